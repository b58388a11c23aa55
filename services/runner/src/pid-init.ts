// The init of a run's PID namespace. `unshare --pid` (without --fork) leaves its caller in the
// runner's namespace and puts the caller's children in the new one, the first of them as PID 1.
// This program is that caller: it forks the namespace's PID 1, then the script (which is
// therefore never PID 1, and gets SIGTERM like any process), and stands in for the script
// towards the runner.
//
// Why not `unshare --fork` with the script below it: the process the runner waits for must die
// of the very signal that killed the script, or "killed by SIGKILL" (a memory limit, say)
// becomes "exit code 1". A PID 1 cannot die of a signal it has no handler for, and unshare 2.38
// (Debian 12) exits 1 where its child died of SIGKILL. So the waiting is done here, outside the
// namespace, where dying of a signal works, and PID 1 only keeps the namespace alive:
//
// - PID 1 ignores SIGCHLD, so the kernel reaps every orphan the script leaves to it. SIGTERM and
//   the like do not reach it (a PID 1 without handlers ignores them). It reads a pipe that only
//   this process holds open, so it exits, and the kernel kills whatever is left in the
//   namespace, as soon as this process is done or killed.
// - The script leads a process group of its own, as when the runner started it directly. Every
//   signal this process receives (the runner's SIGTERM to its group, above all) is passed on to
//   that group, once. One that comes before the script has started is held, and passed on the
//   moment the script has exec'd (its close-on-exec pipe closes then): a stop in the first
//   milliseconds of a run stops it then, instead of leaving it running until the SIGKILL after
//   the grace, and nothing is passed on while the forked child still has this program's
//   handlers, which would swallow it. SIGKILL cannot be passed on, but it kills PID 1 too (same
//   group), and with it the whole namespace.
//   The script cannot signal this process: it is outside the script's namespace.
// - When the script ends, PID 1 is stopped and collected (no zombie left to the host's init),
//   and the script's status is repeated: the same exit code, or death by the same signal (the
//   limits set before, --core=0 among them, apply to this process too).
// - Neither process keeps the run's stdout and stderr open once the script has its copies, so
//   the runner sees the output end when the script's does, before the namespace is torn down:
//   the last lines can then wait for the report instead of a call of their own.
// - It renames itself: its command line held the script's whole command line, environment
//   included, which would otherwise stay on show outside the sandbox for the whole run.
//
// Perl because it is there wherever util-linux is (Essential in Debian), starts in a few
// milliseconds, loads nothing from the working directory, and can fork, wait and signal as a
// shell cannot: a shell's `$?` does not tell "exit 137" from "killed by SIGKILL".

export const PID_NAMESPACE_INIT = String.raw`
use strict;
my @passed_on = grep { !/^(?:CHLD|CLD|KILL|STOP|NUM32|NUM33)$/ } keys %SIG;
my @held;
$SIG{$_} = sub { push @held, $_[0] } for @passed_on;
pipe(my $holder_gone, my $holder) or die "rgrid-init: pipe: $!\n";
my $init = fork;
defined $init or die "rgrid-init: fork: $!\n";
if ($init == 0) {
    $SIG{$_} = "IGNORE" for @passed_on;
    $0 = "rgrid-init";
    close $holder;
    drop_output();
    $SIG{CHLD} = "IGNORE";
    1 while sysread($holder_gone, my $byte, 1);
    exit 0;
}
close $holder_gone;
pipe(my $script_started, my $script_starting) or die "rgrid-init: pipe: $!\n";
my $script = fork;
defined $script or die "rgrid-init: fork: $!\n";
if ($script == 0) {
    $SIG{$_} = "DEFAULT" for @passed_on;
    setpgrp(0, 0);
    exec { $ARGV[0] } @ARGV;
    print STDERR "rgrid-init: cannot run $ARGV[0]: $!\n";
    exit 127;
}
$0 = "rgrid-init";
close $script_starting;
1 until defined sysread($script_started, my $byte, 1);
close $script_started;
drop_output();
$SIG{$_} = sub { kill $_[0], -$script } for @passed_on;
while (defined(my $signal = shift @held)) {
    kill $signal, -$script;
}
waitpid($script, 0) == $script or die "rgrid-init: waitpid: $!\n";
my $status = $?;
close $holder;
waitpid($init, 0);
$SIG{$_} = "DEFAULT" for @passed_on;
kill $status & 127, $$ if $status & 127;
exit($status >> 8);

# Should /dev/null not open, the pipes merely stay open until this process ends, as before.
sub drop_output {
    open(STDOUT, ">", "/dev/null");
    open(STDERR, ">", "/dev/null");
}
`;
