"""`python -m astrasim` and the `astrasim` script: the CLI, with Ctrl-C at any moment (even while
the libraries load) ending in one line and exit code 130, like inside a command."""

import signal
import sys


def main() -> None:
    # a shell starts background jobs with SIGINT ignored, and Python keeps it so: then an
    # interrupt would be lost and the run would finish and write its file
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from astrasim.cli import app

        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
