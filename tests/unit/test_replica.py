"""Where a lottery's replica lives and Litestream's configuration for it (no Litestream run)."""

import json

from storage.replica import replica_for


def test_each_lottery_has_its_own_replica_folder_and_every_process_finds_the_same_socket(
    tmp_path,
):
    one = replica_for(tmp_path / "data", "file:///mnt/replica/", "20261201T0900Z-abc")
    assert one.url == "file:///mnt/replica/20261201T0900Z-abc"
    assert replica_for(tmp_path / "data", "s3://b/p", "").url == "s3://b/p/default"
    again = replica_for(str(tmp_path / "data" / ".." / "data"), "file:///x", "y")
    assert again.control == one.control and again.db == one.db  # the same folder, however named
    assert len(str(one.control).encode()) < 108  # a unix socket path's limit
    other = replica_for(tmp_path / "elsewhere", "file:///mnt/replica", "z")
    assert other.control != one.control


def test_litestreams_configuration_names_the_database_the_replica_and_the_socket(tmp_path):
    replica = replica_for(tmp_path / "data", "file:///mnt/replica", "L1")
    document = json.loads(replica.config_text())  # JSON is YAML: Litestream reads it
    assert document["socket"] == {"enabled": True, "path": str(replica.control)}
    (db,) = document["dbs"]
    assert db["path"] == str(tmp_path / "data" / "bets.db")
    assert db["replica"]["url"] == "file:///mnt/replica/L1"
