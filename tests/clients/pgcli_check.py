"""pgcli against `sluice serve`, in a terminal as a user runs it: it starts
(its startup queries), fills its completer in the background (the
queries of tests/clients/introspection/pgcli.sql), and offers the views
when one types `SELECT * FROM `. Prints the completions it saw; exits
non-zero when they are missing or pgcli logged an error.

    python pgcli_check.py PORT VIEW [VIEW ...]
"""
import fcntl
import os
import pathlib
import pty
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time

port, views = sys.argv[1], sys.argv[2:]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")


def main():
    with tempfile.TemporaryDirectory(prefix="pgcli-home-") as home:
        check(home)


def check(home):
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=f"{home}/.config", TERM="xterm",
               PAGER="cat", COLUMNS="160", LINES="40", PROMPT_TOOLKIT_NO_CPR="1")
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    pgcli = subprocess.Popen(
        [sys.executable, "-c", "from pgcli.main import cli; cli()",
         "-h", "127.0.0.1", "-p", port, "-U", "sluice", "-d", "sluice", "--less-chatty"],
        stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True,
    )
    os.close(follower)
    screen = []

    def read(seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    screen.append(os.read(leader, 65536).decode(errors="replace"))
                except OSError:
                    return
        return ANSI.sub("", "".join(screen))

    def wait_for(pattern, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            text = read(0.3)
            if re.search(pattern, text or ""):
                return text
        return None

    try:
        if not wait_for(r"sluice>", 30):
            sys.exit(f"pgcli showed no prompt:\n{read(0.5)}")
        # The completer is filled in the background: type, and type again
        # until it offers the view (or time runs out). The menu shows a few
        # names at a time: each view is typed up to its third letter.
        offered = []
        for view in views:
            for _ in range(20):
                screen.clear()
                os.write(leader, f"SELECT * FROM {view[:3]}".encode())
                text = wait_for(rf"\b{re.escape(view)}\s+view\b", 1.5)
                os.write(leader, b"\x15")  # Ctrl-U: clear the line
                read(0.3)
                if text:
                    offered.append(view)
                    break
        os.write(leader, b"\x15\\q\r")
        read(2)
    finally:
        if pgcli.poll() is None:
            pgcli.terminate()
        pgcli.wait(10)
    log = pathlib.Path(home, ".config/pgcli/log")
    errors = [line for line in (log.read_text().splitlines() if log.exists() else [])
              if " ERROR " in line]
    if errors:
        sys.exit("pgcli logged errors:\n" + "\n".join(errors))
    if offered != views:
        sys.exit(f"pgcli offered {offered} of {views}:\n{read(0.1)}")
    print("pgcli completes:", " ".join(offered))


main()
