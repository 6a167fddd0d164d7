#!/usr/bin/env python3
"""A lab app whose image links libpq: `web` serves HTTP, `worker` writes a row a second.

Connects through the real libpq named by LAB_LIBPQ (loaded with ctypes), with the URL in
DATABASE_URL (environment only). Prints its own start-up lines and the driver's own errors.
Standard library only.
"""

import ctypes
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

CONNECTION_OK = 0
PGRES_COMMAND_OK = 1
PGRES_TUPLES_OK = 2

ROLE = sys.argv[1] if len(sys.argv) > 1 else "web"


def say(line):
    print(f"{ROLE}: {line}", flush=True)


def load_libpq():
    lib = ctypes.CDLL(os.environ.get("LAB_LIBPQ", "libpq.so.5"))
    lib.PQconnectdb.restype = ctypes.c_void_p
    lib.PQconnectdb.argtypes = [ctypes.c_char_p]
    lib.PQstatus.argtypes = [ctypes.c_void_p]
    lib.PQerrorMessage.restype = ctypes.c_char_p
    lib.PQerrorMessage.argtypes = [ctypes.c_void_p]
    lib.PQreset.argtypes = [ctypes.c_void_p]
    lib.PQfinish.argtypes = [ctypes.c_void_p]
    lib.PQexec.restype = ctypes.c_void_p
    lib.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.PQresultStatus.argtypes = [ctypes.c_void_p]
    lib.PQresultErrorMessage.restype = ctypes.c_char_p
    lib.PQresultErrorMessage.argtypes = [ctypes.c_void_p]
    lib.PQntuples.argtypes = [ctypes.c_void_p]
    lib.PQgetvalue.restype = ctypes.c_char_p
    lib.PQgetvalue.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.PQclear.argtypes = [ctypes.c_void_p]
    return lib


class DbError(Exception):
    pass


class Db:
    def __init__(self, lib, url):
        self.lib = lib
        self.conn = lib.PQconnectdb(url.encode())
        if lib.PQstatus(self.conn) != CONNECTION_OK:
            raise DbError(self.error())

    def error(self):
        return (self.lib.PQerrorMessage(self.conn) or b"").decode("utf-8", "replace").rstrip("\n")

    def query(self, sql):
        """Rows (lists of text values) of `sql`; reconnects once if the connection broke."""
        if self.lib.PQstatus(self.conn) != CONNECTION_OK:
            self.lib.PQreset(self.conn)
            if self.lib.PQstatus(self.conn) != CONNECTION_OK:
                raise DbError(self.error())
        res = self.lib.PQexec(self.conn, sql.encode())
        try:
            st = self.lib.PQresultStatus(res) if res else -1
            if st not in (PGRES_COMMAND_OK, PGRES_TUPLES_OK):
                msg = self.lib.PQresultErrorMessage(res) if res else None
                text = (msg or b"").decode("utf-8", "replace").rstrip("\n") or self.error()
                raise DbError(text)
            rows = []
            for r in range(self.lib.PQntuples(res)):
                rows.append(self.lib.PQgetvalue(res, r, 0).decode("utf-8", "replace"))
            return rows
        finally:
            if res:
                self.lib.PQclear(res)


def connect():
    lib = load_libpq()
    v = lib.PQlibVersion()
    say(f"libpq {v // 10000}.{v // 100 % 100}.{v % 100}" if v < 100000 else f"libpq {v // 10000}.{v % 10000}")
    try:
        return Db(lib, os.environ["DATABASE_URL"])
    except DbError as e:
        say(f"cannot connect: {e}")
        sys.exit(1)


APP_TABLE_SQL = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' AND c.relname <> 'lab_app_writes' "
    "ORDER BY c.relname LIMIT 1"
)


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def web():
    db = connect()
    port = int(os.environ["PORT"])

    class Handler(BaseHTTPRequestHandler):
        def answer(self, code, body, kind="application/json"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            try:
                if self.path == "/health":
                    db.query("SELECT 1")
                    self.answer(200, "ok\n", "text/plain")
                elif self.path == "/":
                    table = (db.query(APP_TABLE_SQL) or [None])[0]
                    out = {"app": os.environ.get("APP_NAME"), "table": table, "rows": 0, "sample": []}
                    if table:
                        q = quote_ident(table)
                        out["rows"] = int(db.query(f"SELECT count(*) FROM {q}")[0])
                        out["sample"] = [
                            json.loads(r)
                            for r in db.query(f"SELECT row_to_json(t)::text FROM {q} t LIMIT 3")
                        ]
                    self.answer(200, json.dumps(out) + "\n")
                else:
                    self.answer(404, "not found\n", "text/plain")
            except DbError as e:
                say(f"query failed: {e}")
                self.answer(500, f"{e}\n", "text/plain")

        def log_message(self, fmt, *args):
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    say(f"listening on 127.0.0.1:{port}")
    server.serve_forever()


def worker():
    db = connect()
    writer = f"worker {os.getpid()}"
    try:
        db.query(
            "CREATE TABLE IF NOT EXISTS lab_app_writes (id bigserial PRIMARY KEY, "
            "writer text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())"
        )
    except DbError as e:
        say(f"cannot create lab_app_writes: {e}")
        sys.exit(1)
    say("writing a row a second into lab_app_writes")
    while True:
        try:
            db.query(f"INSERT INTO lab_app_writes (writer) VALUES ('{writer}')")
        except DbError as e:
            say(f"write failed: {e}")
        time.sleep(1)


if __name__ == "__main__":
    {"web": web, "worker": worker}[ROLE]()
