"""A pre-imported launcher: forks `channeld` daemons on request, so a restart costs a fork, not an import.

Reads one JSON line per daemon from stdin: {"argv": [...], "log": path}; answers with the child's pid.
Children are real, separate processes (their own store, sockets, trio run) and are SIGKILLed by the test.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

import channeld.api  # imported before forking: the point of the zygote
import channeld.chain
import channeld.cli
import channeld.node


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    del channeld.chain
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.environ.update(request.get("env", {}))
            code = 1
            try:
                code = channeld.cli.main(request["argv"])
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
