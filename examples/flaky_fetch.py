"""Totals a day's orders in euros, using exchange rates from an upstream rates service.

The upstream service is warming up until the time given in UPSTREAM_READY_AT (a Unix timestamp);
before then every call is answered with 503 Service Unavailable, the kind of transient failure a
retry is for. Run it, watch it fail, wait a few seconds, and `rgrid retry` it: the retry gets the
same script, arguments, environment and input file, and succeeds.

    rgrid run examples/flaky_fetch.py examples/data/orders.json \
        --env UPSTREAM_READY_AT=$(( $(date +%s) + 10 ))
"""

import json
import os
import sys
import time

RATES_TO_EUR = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.05}


class UpstreamUnavailable(Exception):
    pass


def fetch_rates():
    ready_at = float(os.environ.get("UPSTREAM_READY_AT", "0"))
    now = time.time()
    if now < ready_at:
        raise UpstreamUnavailable(
            f"rates service answered 503 Service Unavailable (warming up, ready in {ready_at - now:.0f}s)"
        )
    return RATES_TO_EUR


def main():
    if len(sys.argv) != 2:
        print("usage: flaky_fetch.py ORDERS_JSON", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as handle:
        orders = json.load(handle)
    print(f"loaded {len(orders)} orders from {sys.argv[1]}")

    print("fetching exchange rates from the rates service...")
    try:
        rates = fetch_rates()
    except UpstreamUnavailable as error:
        print(f"UpstreamUnavailable: {error}", file=sys.stderr)
        return 1

    total = sum(order["amount"] * rates[order["currency"]] for order in orders)
    summary = {"orders": len(orders), "total_eur": round(total, 2)}
    with open("totals.json", "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    print(f"total: {summary['total_eur']} EUR over {summary['orders']} orders (written to totals.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
