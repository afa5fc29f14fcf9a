import pytest

from scripts.lab.processes import Server, stop_quietly


@pytest.fixture
def make_server(tmp_path):
    """Build (not start) servers storing into tmp_path; each is killed after the test."""
    made = []

    def make(**env) -> Server:
        server = Server(tmp_path / "data", tmp_path / f"server{len(made)}.log", **env)
        made.append(server)
        return server

    yield make
    for server in made:
        stop_quietly(server)
