#!/usr/bin/env python3
"""Another BlockHost component writing vms.json while the provisioner works.

Follows blockhost-common's lock-file protocol: open <db>.lock for appending,
flock LOCK_EX, read the database, change fields the provisioner does not own,
write a mkstemp file in the same directory, fsync, rename it over, unlock.

Usage: vmdb_writer.py <db_file> <stop_file>
Writes until <stop_file> exists, then prints how many updates it made. Each
update increments the top-level "soak_writer_count" and sets "soak_count" on
every record to the same number, so a lost update shows as a lower count.
"""

import fcntl
import json
import os
import sys
import tempfile
import time


def update(db_file, count):
    with open(db_file + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(db_file) as f:
                db = json.load(f)
        except FileNotFoundError:
            return False
        db["soak_writer_count"] = db.get("soak_writer_count", 0) + 1
        if db["soak_writer_count"] != count:
            raise SystemExit(f"lost update: expected {count}, database says {db['soak_writer_count']}")
        for record in db.get("vms", {}).values():
            record["soak_count"] = count
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(db_file), suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(db, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, db_file)
        return True


def main():
    db_file, stop_file = sys.argv[1], sys.argv[2]
    count = 0
    while not os.path.exists(stop_file):
        if update(db_file, count + 1):
            count += 1
        # Pacing only (lets other writers in); nothing waits on it.
        time.sleep(0.005)
    print(count, flush=True)


if __name__ == "__main__":
    main()
