"""`director`: keepalived's command line.

Kept light on purpose: `director -t` on a 100k-line config is benchmarked against
`keepalived -t`, so nothing heavy (aiohttp, scapy, pyroute2) is imported here.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from . import __version__

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    import argparse
    from typing import NoReturn, TextIO

    from conf import Loaded
    from conf.model import Config

# keepalived's exit codes (keepalived/include/main.h)
EXIT_OK = 0
EXIT_PROGRAM_ERROR = 2
EXIT_CONFIG = 4
EXIT_CONFIG_TEST = 5

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
# set by the watchdog parent for its own re-execution (director/watchdog.py)
WATCHDOG_STATE = "DIRECTOR_WATCHDOG_STATE"

# keepalived --signum: STATS_CLEAR and JSON are real-time signals on Linux
SIGNUMS = {"STOP": 15, "RELOAD": 1, "DATA": 10, "STATS": 12, "STATS_CLEAR": 63, "JSON": 36}


SUBCOMMANDS = """subcommands (each has its own --help):
  director ctl COMMAND    control a running director: status, drain, enable, weight,
                          clear, handover, takeover, reload (--runtime-dir, --json)
  director ipvs           the kernel's IPVS table, like ipvsadm -Ln
  director genhash        digest of a URL for HTTP_GET/SSL_GET (keepalived's genhash)"""


def make_parser() -> argparse.ArgumentParser:
    import argparse  # not on `director -t`'s path (_fast_args)

    class _Formatter(argparse.RawDescriptionHelpFormatter):
        """argparse builds a formatter per add_argument, and its default asks shutil for
        the terminal width: shutil pulls in bz2 and lzma, a cost for --help's sake."""

        def __init__(self, prog: str) -> None:
            cols = os.environ.get("COLUMNS", "")
            if cols.isdigit():
                width = int(cols)
            else:
                try:
                    width = os.get_terminal_size(sys.stdout.fileno()).columns
                except (OSError, ValueError):
                    width = 80
            super().__init__(prog, width=max(width - 2, 40))

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            self.print_usage(sys.stderr)
            self.exit(EXIT_PROGRAM_ERROR, f"{self.prog}: {message}\n")

    p = _Parser(prog="director", description="keepalived-compatible LVS/IPVS director "
                "with VRRP failover", epilog=SUBCOMMANDS, formatter_class=_Formatter)
    a = p.add_argument
    a("-f", "--use-file", dest="config", default=DEFAULT_CONFIG, metavar="FILE",
      help=f"configuration file (default {DEFAULT_CONFIG})")
    a("-P", "--vrrp", action="store_true", help="only run the VRRP subsystem")
    a("-C", "--check", action="store_true", help="only run the health-checker subsystem")
    a("-l", "--log-console", action="store_true", help="log messages to the console")
    a("-D", "--log-detail", action="store_true", help="detailed log messages")
    a("-S", "--log-facility", metavar="FACILITY", type=log_facility,
      help="syslog facility: 0-7 or local0-7 (LOG_LOCALn), user, daemon (default)")
    a("-g", "--log-file", nargs="?", const=_LOG_FILE_CONST, metavar="FILE",
      help="log to a file")
    a("-G", "--no-syslog", action="store_true",
      help="do not log via syslog (without -l or -g: no log at all)")
    a("-n", "--dont-fork", action="store_true", help="stay in the foreground")
    a("-d", "--dump-conf", action="store_true",
      help="print the parsed configuration as JSON (defaults filled in) and exit")
    a("-p", "--pid", metavar="FILE", help="pid file of the parent process")
    a("-r", "--vrrp_pid", metavar="FILE", help="pid file of the VRRP child")
    a("-c", "--checkers_pid", metavar="FILE", help="pid file of the checker child")
    a("-R", "--dont-respawn", action="store_true", help="do not restart children that die")
    a("-X", "--release-vips", action="store_true",
      help="drop VIPs when leaving MASTER even if not added by this run (director always "
           "does: accepted for keepalived compatibility)")
    a("-V", "--dont-release-vrrp", action="store_true", help="keep VIPs and routes on stop")
    a("-I", "--dont-release-ipvs", action="store_true", help="keep IPVS services on stop")
    a("-i", "--config-id", metavar="ID",
      help="config id for @ID lines (default: host name up to the first dot)")
    a("-e", "--all-config", action="store_true", help="a missing include file is an error")
    a("-t", "--config-test", action="store_true",
      help="check the configuration, report problems as file:line on stderr, and exit")
    a("--dry-run", action="store_true",
      help="do not program IPVS: log the operations and keep the table in memory")
    a("--dump-dir", default="/tmp", metavar="DIR",
      help="where USR1/USR2/JSON signals write keepalived.data/.stats/.json (default /tmp)")
    a("--runtime-dir", default="/run/director", metavar="DIR",
      help="where the children publish their live state (default /run/director)")
    a("--metrics", metavar="[ADDR:]PORT",
      help="serve the status page (/), /metrics (Prometheus) and /status (JSON) over "
      "HTTP; ADDR defaults to 127.0.0.1, or unix:PATH; the page's drain/weight buttons "
      "only on loopback or unix:; off unless given")
    a("--signum", metavar="SIGFUNC", help="print the signal number for STOP, RELOAD, DATA, "
      "STATS, STATS_CLEAR or JSON and exit")
    a("-v", "--version", action="version", version=f"director {__version__}")
    return p


# The common command lines (`director -t`, `-d`, the daemon with its usual options) read
# without argparse: its import and its parser are a tenth of a small config's check, and
# on the daemon's way to its first IPVS operation. Anything else (other options,
# abbreviations, --opt=V, -tf FILE, a value starting with '-' or empty, --help, --version,
# --signum, errors) goes to argparse.
_FAST_FLAGS = {"-t": "config_test", "--config-test": "config_test", "-d": "dump_conf",
               "--dump-conf": "dump_conf", "-e": "all_config", "--all-config": "all_config",
               "-l": "log_console", "--log-console": "log_console", "-D": "log_detail",
               "--log-detail": "log_detail", "-n": "dont_fork", "--dont-fork": "dont_fork",
               "-P": "vrrp", "--vrrp": "vrrp", "-C": "check", "--check": "check",
               "-G": "no_syslog", "--no-syslog": "no_syslog", "-R": "dont_respawn",
               "--dont-respawn": "dont_respawn", "-X": "release_vips",
               "--release-vips": "release_vips", "-V": "dont_release_vrrp",
               "--dont-release-vrrp": "dont_release_vrrp", "-I": "dont_release_ipvs",
               "--dont-release-ipvs": "dont_release_ipvs", "--dry-run": "dry_run"}
_FAST_VALUES = {"-f": "config", "--use-file": "config", "-i": "config_id",
                "--config-id": "config_id", "-p": "pid", "--pid": "pid", "-r": "vrrp_pid",
                "--vrrp_pid": "vrrp_pid", "-c": "checkers_pid",
                "--checkers_pid": "checkers_pid", "--dump-dir": "dump_dir",
                "--runtime-dir": "runtime_dir", "--metrics": "metrics",
                "-S": "log_facility", "--log-facility": "log_facility"}
_FAST_OPTIONAL = {"-g": "log_file", "--log-file": "log_file"}  # nargs="?"
_LOG_FILE_CONST = "/tmp/keepalived.log"
# make_parser's defaults (tests/unit/test_cli.py holds them equal)
_DEFAULTS: dict[str, object] = {
    "config": DEFAULT_CONFIG, "vrrp": False, "check": False, "log_console": False,
    "log_detail": False, "log_facility": None, "log_file": None, "no_syslog": False,
    "dont_fork": False, "dump_conf": False, "pid": None, "vrrp_pid": None,
    "checkers_pid": None, "dont_respawn": False, "release_vips": False,
    "dont_release_vrrp": False, "dont_release_ipvs": False, "config_id": None,
    "all_config": False, "config_test": False, "dry_run": False, "dump_dir": "/tmp",
    "runtime_dir": "/run/director", "metrics": None, "signum": None}


def _fast_args(argv: list[str]) -> SimpleNamespace | None:
    """What make_parser().parse_args(argv) gives for a command line written with the
    common options only, else None (argparse reads it)."""
    got = dict(_DEFAULTS)
    i, n = 0, len(argv)
    while i < n:
        word = argv[i]
        dest = _FAST_FLAGS.get(word)
        if dest is not None:
            got[dest] = True
            i += 1
            continue
        dest = _FAST_OPTIONAL.get(word)
        if dest is not None:  # FILE if a plain word follows, else the default file
            nxt = argv[i + 1] if i + 1 < n else None
            if nxt is None or nxt in _FAST_FLAGS or nxt in _FAST_VALUES or (
                    nxt in _FAST_OPTIONAL):
                got[dest] = _LOG_FILE_CONST
                i += 1
                continue
            if not nxt or nxt[0] == "-":
                return None
            got[dest] = nxt
            i += 2
            continue
        dest = _FAST_VALUES.get(word)
        if dest is None or i + 1 >= n:
            return None
        value = argv[i + 1]
        if not value or value[0] == "-":
            return None
        if dest == "log_facility":
            try:
                got[dest] = log_facility(value)
            except Exception:  # (argparse.ArgumentTypeError): argparse says it
                return None
        else:
            got[dest] = value
        i += 2
    return SimpleNamespace(**got)


def _report(loaded: Loaded, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    for d in loaded.diags.items:
        print(str(d).encode("utf-8", "backslashreplace").decode("utf-8"), file=out)


def config_test(args: argparse.Namespace | SimpleNamespace) -> int:
    import gc

    # The parser's import and the parse make a million objects and no garbage: the
    # collector would only walk them (once the parse is over, that walk is a fifth of
    # `-t` on 100k lines), and the process ends once they are checked.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _config_test(args)
    finally:
        if was_enabled:
            gc.enable()


def _config_test(args: argparse.Namespace | SimpleNamespace) -> int:
    from conf import load

    loaded = load(args.config, config_id=args.config_id, all_config=args.all_config)
    _report(loaded)
    if args.dump_conf and loaded.config is not None:
        from conf.dump import to_json

        print(to_json(loaded.config))
    if not loaded.ok:
        n = len(loaded.diags.errors)
        print(f"{args.config}: {n} error{'s' * (n != 1)} in configuration", file=sys.stderr)
        return EXIT_CONFIG_TEST
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["genhash"], ["-T"], ["--genhash"]):
        from checkers.genhash import main as genhash_main

        return genhash_main(argv[1:])
    if argv[:1] == ["ctl"]:
        from .ctl import main as ctl_main

        return ctl_main(argv[1:])
    if argv[:1] == ["ipvs"]:
        from .ipvs_view import main as ipvs_main

        return ipvs_main(argv[1:])
    fast = _fast_args(argv)
    if fast is not None and (fast.config_test or fast.dump_conf):
        return config_test(fast)
    args: argparse.Namespace = (  # (the same attributes)
        fast if fast is not None else make_parser().parse_args(argv))  # type: ignore[assignment]
    state = os.environ.get(WATCHDOG_STATE)
    if state is not None:  # the watchdog parent re-executed itself, its children running
        from .watchdog import resume

        rc = resume(args, state)
        if rc is not None:
            return rc
    if args.signum is not None:
        num = SIGNUMS.get(args.signum.upper())
        if num is None:
            print(f"Unknown sigfunc {args.signum}", file=sys.stderr)
            return 1
        print(num)
        return EXIT_OK
    if args.config_test or args.dump_conf:
        return config_test(args)
    return daemon(args)


def log_facility(text: str) -> int:
    """keepalived's -S: a number 0-7 or local0-7 means LOG_LOCALn; or user, daemon.
    Returns the facility code (LOG_LOCAL0 is 16, LOG_USER 1, LOG_DAEMON 3)."""
    number = text[5:] if text.startswith("local") else text
    if number.isdigit() and 0 <= int(number) <= 7:
        return 16 + int(number)
    named = {"user": 1, "daemon": 3}
    if text in named:
        return named[text]
    import argparse

    raise argparse.ArgumentTypeError(f"invalid log facility '{text}' (0-7, local0-7, user, "
                                     "daemon)")


def setup_logging(args: argparse.Namespace, log_fd: int | None = None) -> None:
    """`log_fd`: the -g log file as opened before (by the parent before it forked the
    checker child, or before the watchdog re-executed itself); -1: it could not be."""
    import logging

    level = logging.DEBUG if args.log_detail else logging.INFO
    fmt = "%(asctime)s director[%(process)d]: %(message)s"
    if args.log_console or args.dont_fork:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    elif args.log_file and log_fd is not None and log_fd < 0:
        handler = logging.StreamHandler(sys.stderr)  # (prefork.open_log said why)
    elif args.log_file and log_fd is not None:
        os.set_inheritable(log_fd, False)
        handler = logging.StreamHandler(os.fdopen(log_fd, "a"))
    elif args.log_file:
        from daemonlib import safefile

        try:  # keepalived's -g default is in /tmp: never through a planted link
            handler = logging.StreamHandler(os.fdopen(safefile.create(args.log_file), "a"))
        except OSError as e:
            why = str(e) if isinstance(e, safefile.Refused) else (
                f"log file {args.log_file}: {e.strerror}")
            print(f"director: {why}; logging to stderr", file=sys.stderr)
            handler = logging.StreamHandler(sys.stderr)
    elif args.no_syslog:
        handler = logging.NullHandler()
    else:
        import logging.handlers

        facility = 3 if args.log_facility is None else args.log_facility  # LOG_DAEMON
        handler = logging.handlers.SysLogHandler("/dev/log", facility=facility)
        fmt = "director[%(process)d]: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    # -D is our detail; libraries (pyroute2, asyncio) stay at INFO
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("director").setLevel(level)


def _load_for_run(args: argparse.Namespace) -> Config | None:
    from conf import load

    # seed: the checker child's first reload reads again only the blocks that changed
    loaded = load(args.config, config_id=args.config_id, all_config=args.all_config,
                  seed=True)
    _report(loaded)
    if not loaded.ok:
        print(f"{args.config}: configuration has errors; not starting", file=sys.stderr)
        return None
    return loaded.config


def daemon(args: argparse.Namespace) -> int:
    """The watchdog parent with the VRRP and/or checker children (-P / -C: one side)."""
    import gc

    from daemonlib.memory import no_huge_pages

    no_huge_pages()  # before the parse: its heap would otherwise be made of huge pages
    # Start-up (imports, the parse) makes long-lived objects and next to no garbage: no
    # collections until the processes are up; each side enables them once started.
    gc.disable()
    cfg = _load_for_run(args)
    if cfg is None:
        return EXIT_CONFIG
    if not args.dont_fork:
        if os.fork():  # keepalived's default: the parent returns, the daemon carries on
            return EXIT_OK
        os.setsid()
    holder = [cfg]
    del cfg  # the watchdog lets go of the model once the children have it
    # the checker child first, before logging and the watchdog (director/prefork.py)
    from .prefork import fork_checker

    forked = fork_checker(args, holder)
    setup_logging(args, log_fd=None if forked is None else forked.log_fd)
    import logging

    from conf.load import reload

    from .watchdog import main as watchdog

    def load_again():  # type: ignore[no-untyped-def]  # a respawned child's config
        return reload(args.config, args.config_id, args.all_config,
                      logging.getLogger("director"))

    return watchdog(args, holder, load_again, forked)


def run() -> None:
    try:
        rc = main()
        # Skip the interpreter's teardown of a big parsed model: nothing is left to
        # release that the process exit does not (and it is a tenth of `-t` on 100k lines);
        # nor a collection that would walk it (config_test keeps it off until it returns).
        import gc

        gc.disable()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except Exception as e:  # a bug: say so in one line, never a traceback
        print(f"director: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(EXIT_PROGRAM_ERROR)
