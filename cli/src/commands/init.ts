import type { CliEnvironment } from "../config";
import { DEFAULT_API_URL, readConfigFile, resolveConnection, writeConfigFile } from "../config";
import type { Output } from "../context";
import { ExitCode } from "../errors";
import { toJson } from "../json";

export interface InitOptions {
  apiUrl?: string;
  apiKey?: string;
  json: boolean;
}

/**
 * `rgrid init [--api-url U] [--api-key K]`: writes the config file. Flags win; what the file
 * already holds is kept; the environment is not copied in, so a shell's temporary override does
 * not become permanent by accident.
 */
export async function initCommand(
  options: InitOptions,
  deps: { environment: CliEnvironment; output: Output },
): Promise<number> {
  const { environment, output } = deps;
  const existing = await readConfigFile(environment.configPath);
  // resolveConnection validates the URL and reports a missing key the same way other commands do.
  const connection = resolveConnection(
    { ...environment, apiUrl: undefined, apiKey: undefined },
    { apiUrl: options.apiUrl ?? existing.apiUrl ?? DEFAULT_API_URL, apiKey: options.apiKey ?? existing.apiKey },
  );
  await writeConfigFile(environment.configPath, connection);
  if (options.json) {
    output.stdout(toJson({ config_path: environment.configPath, api_url: connection.apiUrl }));
  } else {
    output.stdout(`Configuration written to ${environment.configPath}`);
    output.stdout(`Server: ${connection.apiUrl}`);
  }
  return ExitCode.success;
}
