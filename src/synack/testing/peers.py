"""Programs the tests run inside a network namespace as the kernel's side of a connection:
plain Python sockets, passed to ``python3 -c`` with their arguments on the command line."""

import textwrap

# argv: host port nbytes seed. Sends nbytes of seeded random data while reading everything
# back; prints "<bytes received> <sha256 of them>". Used against echo services.
ECHO_CLIENT = textwrap.dedent("""
    import hashlib, random, socket, sys, threading
    host, port, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    data = random.Random(seed).randbytes(n)
    s = socket.create_connection((host, port), timeout=60)
    def writer():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=writer); t.start()
    h, got = hashlib.sha256(), 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b); got += len(b)
    t.join()
    s.close()
    print(got, h.hexdigest(), flush=True)
""")

# argv: host port. Accepts one connection, reads to EOF, answers "<bytes> <sha256>\n" and
# prints the same. Used as a kernel server that synack's client sends to.
SINK_SERVER = textwrap.dedent("""
    import hashlib, socket, sys
    host, port = sys.argv[1], int(sys.argv[2])
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(1); ls.settimeout(60)
    print("ready", flush=True)
    s, _ = ls.accept(); s.settimeout(60)
    h, got = hashlib.sha256(), 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b); got += len(b)
    s.sendall(f"{got} {h.hexdigest()}\\n".encode())
    s.close()
    print(got, h.hexdigest(), flush=True)
""")
