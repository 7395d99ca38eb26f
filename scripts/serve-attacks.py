#!/usr/bin/env python3
"""Runs the attacks of issue 8 against a `wasmsched serve` binary and prints
what happened: the measurements behind the hostile suite, for comparing two
builds (say, before and after a change).

usage: scripts/serve-attacks.py BINARY [ATTACK...]
  build a binary: go build -o /tmp/wasmsched ./cmd/wasmsched
  attacks: namebomb sleep mem4g burst slowbody compile errors (default: all)

Each attack starts its own server on 127.0.0.1 (a free port), with the
flags the attack needs, and stops it (SIGKILL if SIGTERM does not do it).
Needs only Python 3 and the modules under testdata/.
"""
import atexit, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTILE = os.path.join(ROOT, "testdata", "hostile")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, binary, *flags):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        if "--data-dir" in help_text(binary):  # a serve on JetStream: its own store, removed at exit
            self.datadir = tempfile.mkdtemp(prefix="serve-attacks-")
            atexit.register(shutil.rmtree, self.datadir, True)
            flags = ("--data-dir", self.datadir) + flags
        self.proc = subprocess.Popen([binary, "serve", "--addr", "127.0.0.1:%d" % self.port] + list(flags),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(500):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError("serve exited: " + self.proc.stdout.read())
                time.sleep(0.02)
        raise RuntimeError("serve did not start")

    def alive(self):
        return self.proc.poll() is None

    def rss_mib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) // 1024
        except FileNotFoundError:
            return None

    def stop(self, timeout=60):
        t0 = time.time()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return time.time() - t0

    def req(self, method, path, body=None, timeout=120):
        r = urllib.request.Request(self.base + path, data=body, method=method)
        try:
            with urllib.request.urlopen(r, timeout=timeout) as resp:
                raw = resp.read()
                try:
                    return resp.status, json.loads(raw or b"null")
                except ValueError:
                    return resp.status, raw.decode(errors="replace")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except Exception:
                return e.code, raw.decode(errors="replace")
        except Exception as e:
            return None, str(e)

    def wait_job(self, jid, timeout=120):
        t0 = time.time()
        while time.time() - t0 < timeout:
            code, j = self.req("GET", "/jobs/" + jid)
            if code == 200 and j["status"] != "running":
                return j, time.time() - t0
            time.sleep(0.01)
        return None, time.time() - t0


def module(name):
    with open(os.path.join(HOSTILE, name), "rb") as f:
        return f.read()


def wasm(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def attack_namebomb(binary):
    for name in ["namebomb-locals.wasm", "namebomb-funcs.wasm"]:
        s = Server(binary)
        code, body = s.req("POST", "/jobs", module(name))
        time.sleep(0.5)
        print("  %s (%d bytes): POST -> %s %s; serve %s" % (name, len(module(name)), code, str(body)[:100],
              "alive" if s.alive() else "DEAD (exit %s)" % s.proc.returncode))
        s.stop()


def attack_sleep(binary):
    s = Server(binary, "--workers", "2", "--shutdown-timeout", "2s")
    sleeper = wasm("wasmtask/testdata/wasi.wasm")
    ids = []
    for _ in range(2):
        code, j = s.req("POST", "/jobs?export=sleep&args=20000000000&timeout=2s", sleeper)
        ids.append(j["id"] if code == 202 else None)
    time.sleep(0.2)
    code, j = s.req("POST", "/jobs?guest=spin&export=spin&args=100000")
    _, took = s.wait_job(j["id"])
    print("  1 ms job beside two 20 s sleepers on 2 workers: done after %.3f s" % took)
    code, _ = s.req("DELETE", "/jobs/" + ids[0]) if ids[0] else (None, None)
    j0, t0 = s.wait_job(ids[0]) if ids[0] else (None, 0)
    j1, t1 = s.wait_job(ids[1]) if ids[1] else (None, 0)
    print("  sleeper cancelled (DELETE %s): %s after %.2f s; sleeper with timeout=2s: %s/%s after %.2f s" % (
        code, j0 and j0["status"], t0, j1 and j1["status"], j1 and j1.get("error_kind"), t1))
    for _ in range(2):
        s.req("POST", "/jobs?export=sleep&args=9223372036854775807", sleeper)
    print("  SIGTERM with two endless sleepers, --shutdown-timeout 2s: exited after %.2f s" % s.stop(60))


def attack_mem4g(binary):
    s = Server(binary)
    before = s.rss_mib()
    code, j = s.req("POST", "/jobs", module("mem-4gib-min.wasm"))
    if code == 202:
        s.wait_job(j["id"])
    time.sleep(0.5)
    print("  4 GiB minimum (%d bytes): POST -> %s %s; RSS %s -> %s MiB" % (
        len(module("mem-4gib-min.wasm")), code, str(j)[:90], before, s.rss_mib()))
    s.stop()


def attack_burst(binary):
    s = Server(binary, "--max-jobs", "8", "--guest-memory", "256MiB", "--memory-budget", "2GiB") \
        if "--memory-budget" in help_text(binary) else Server(binary, "--max-jobs", "8")
    mem = wasm("wasmtask/testdata/memory.wasm")
    before = s.rss_mib()
    ids = [s.req("POST", "/jobs?export=grow_touch&args=2047", mem)[1]["id"] for _ in range(8)]
    peak = before
    while True:
        peak = max(peak, s.rss_mib())
        done = [s.req("GET", "/jobs/" + i)[1]["status"] != "running" for i in ids]
        if all(done):
            break
        time.sleep(0.01)
    after0 = s.rss_mib()
    time.sleep(5)
    print("  8 jobs touching 128 MiB each: RSS %s MiB before, peak %s, %s right after, %s 5 s later" % (
        before, peak, after0, s.rss_mib()))
    s.stop()


def help_text(binary):
    return subprocess.run([binary, "serve", "-h"], capture_output=True, text=True).stderr


def attack_slowbody(binary):
    s = Server(binary)
    conns = []
    for _ in range(200):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n\x00")
        conns.append(c)
    t0 = time.time()
    open_at = {}
    for mark in (10, 30):
        while time.time() - t0 < mark:
            for c in conns:
                try:
                    c.send(b"\x00")  # one byte a second, more or less
                except OSError:
                    pass
            time.sleep(1)
        waiting = 0  # neither answered nor closed by the server
        for c in conns:
            c.setblocking(False)
            try:
                c.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                waiting += 1
            except OSError:
                pass
            c.setblocking(True)
        open_at[mark] = waiting
    code, _ = s.req("GET", "/healthz", timeout=5)
    print("  200 slow uploads: %d still unanswered after 10 s, %d after 30 s; /healthz meanwhile: %s" % (
        open_at[10], open_at[30], code))
    for c in conns:
        c.close()
    s.stop()


def attack_compile(binary):
    s = Server(binary, "--max-body", "2097152")
    spin = wasm("testdata/spin.wasm") + b"\x00\x03\x01z\x00"  # an upload, not the embedded guest
    code, j = s.req("POST", "/jobs?export=spin&args=10", spin)
    s.wait_job(j["id"])
    big = module("funcs-100k.wasm")
    lat = []
    done = threading.Event()

    def upload():
        c, _ = s.req("POST", "/jobs?export=f&args=1", big)
        done.set()
    th = threading.Thread(target=upload)
    t0 = time.time()
    th.start()
    time.sleep(0.05)
    while not done.is_set():
        t1 = time.time()
        s.req("POST", "/jobs?export=spin&args=10", spin)
        lat.append(time.time() - t1)
        time.sleep(0.01)
    th.join()
    lat.sort()
    print("  100,000-function upload compiled in %.2f s; meanwhile %d submits of a compiled module: max %.3f s, median %.4f s" % (
        time.time() - t0, len(lat), lat[-1] if lat else 0, lat[len(lat) // 2] if lat else 0))
    s.stop()


def attack_errors(binary):
    s = Server(binary)
    for what, path, body in [
        ("decode failure", "/jobs", b"\x00asm\x01\x00\x00\x00\x01\xff"),
        ("wrong argument count", "/jobs?guest=spin&export=spin", None),
        ("unknown import", "/jobs", bytes.fromhex("0061736d01000000010401600000020901036" "56e760166" "0000")),
    ]:
        code, j = s.req("POST", path, body)
        if code == 202:
            j, _ = s.wait_job(j["id"])
            j = "then %s %s: %s" % (j["status"], j.get("error_kind"), j.get("error", "")[:80])
        print("  %s: %s %s" % (what, code, str(j)[:120]))
    # A DELETE racing a short job's end.
    wrong = 0
    for _ in range(100):
        c, j = s.req("POST", "/jobs?guest=spin&export=spin&args=20000")
        d, _ = s.req("DELETE", "/jobs/" + j["id"])
        j, _ = s.wait_job(j["id"])
        if d == 202 and j["status"] != "cancelled":
            wrong += 1
    print("  100 DELETEs racing short jobs: %d answered 202 but ended otherwise" % wrong)
    gg = wasm("testdata/goguest.wasm")
    code, j = s.req("POST", "/jobs?arg=1", gg) if "--guest-memory" not in help_text(binary) else (None, None)
    if code is None:
        s.stop()
        s = Server(binary, "--guest-memory", "3MiB")
        code, j = s.req("POST", "/jobs?arg=1", gg)
    else:
        print("  (no memory cap flag: the Go guest runs uncapped)")
    if code == 202:
        j, _ = s.wait_job(j["id"])
        print("  Go guest over its memory cap: %s %s: %s" % (j["status"], j.get("error_kind"), j.get("error", "")[:100]))
    s.stop()


ATTACKS = {"namebomb": attack_namebomb, "sleep": attack_sleep, "mem4g": attack_mem4g, "burst": attack_burst,
           "slowbody": attack_slowbody, "compile": attack_compile, "errors": attack_errors}

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    for name in sys.argv[2:] or list(ATTACKS):
        print(name + ":")
        try:
            ATTACKS[name](binary)
        except Exception as e:
            print("  failed: %r" % e)
