import time
from pathlib import Path
from tests.runner.safety_helpers import Runner, write_migrations, history, run_log

def test_scratch(pg, dbname, database_url, tmp_path):
    d = tmp_path / "m"
    write_migrations(d, {"0001_a.sql": "CREATE TABLE a (id int);\n",
       "0002_bad.sql": "-- café ünï\nCREATE TABLE b (id int);\nSELECT * FROM WHERE x = 1;\n"})
    r = Runner(d, tmp_path / "art", database_url)
    print(r.up())
    (d/"0002_bad.sql").write_bytes(b"-- x\nSELECT '\xff\xfe';\n")
    print(r.up())
    (d/"0002_bad.sql").write_bytes(b"")
    print(r.up())
    (d/"0002_bad.sql").unlink()
    sock = tmp_path / "nosock"; sock.mkdir()
    for url in [f"postgresql://postgres:pw@/x?host={sock}", "postgresql://u:pw@127.0.0.1:1/db",
                "postgresql://u:p@h:notaport/db", "mysql://u:p@h/db", "postgresql://postgres@127.0.0.1:6432/db",
                f"postgresql://postgres@/{dbname}?host={pg.socket_dir}&port=6432"]:
        res = r.up(url=url)
        print(res, res.artifact and (res.artifact["reasonCode"], res.artifact["reason"]))
    print(r.up("--database-url", "", url=""))
    print(r.run("up", "--dir", str(tmp_path/"nope")))
