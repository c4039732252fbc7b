"""What a user's study stores comes back as it went in, or says clearly why not: error texts that a
database's text column cannot hold as they are, numpy numbers, passwords in storage URLs, escaped
file names in SQLite URLs, and a storage object carried into a forked process."""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pytest

import tunelab as tl
from tunelab.errors import StorageError
from tunelab.storage import MemoryStorage, StudyRecord, open_storage
from tunelab.storage.base import hide_password
from tunelab.trial import TrialState

SPACE = {"x": tl.uniform(0.0, 1.0)}


def record(name: str = "s") -> StudyRecord:
    return StudyRecord(id=0, name=name, space=tl.Space(SPACE).to_json(), metrics=["loss"], modes=["min"], seed=3,
                       created_at=1000.5)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage(request, tmp_path):
    if request.param == "memory":
        store = MemoryStorage()
    elif request.param == "sqlite":
        store = open_storage(f"sqlite:///{tmp_path / 't.db'}")
    else:
        store = open_storage(request.getfixturevalue("postgres_url"))
    yield store
    store.close()


def test_an_error_naming_a_file_that_is_not_utf8_or_holding_a_nul_is_recorded(storage):
    """The driver refused the whole write ('surrogates not allowed'; PostgreSQL: 'cannot contain NUL'),
    so the trial stayed running and the tuner crashed on the objective's exception."""
    study = storage.create_study(record())
    path = os.fsdecode(b"/data/caf\xe9.csv")  # a Latin-1 file name, as os.listdir gives it
    messages = {"failed": f"cannot read {path}", "cancelled": "a\x00b", "abandoned": f"gone {path}"}
    trials = [storage.create_trial(study.id, {"x": 0.5}, lambda n: n) for _ in messages]
    assert storage.finish_trial(trials[0].id, TrialState.FAILED, error=messages["failed"],
                                traceback=f"Traceback...\nOSError: {path}\x00")
    assert storage.cancel_trial(trials[1].id, messages["cancelled"])
    assert storage.abandon_trial(trials[2].id, messages["abandoned"], None)[0]
    stored = storage.trials(study.id)
    assert [t.state for t in stored] == [TrialState.FAILED] * 3
    for trial, written in zip(stored, messages.values()):
        assert trial.error in (written, written.replace("\udce9", "\\udce9").replace("\x00", "\\x00"))
    assert stored[0].traceback.startswith("Traceback...\nOSError: /data/caf")


def test_a_tuned_objective_that_fails_with_such_a_message_does_not_crash_the_run(tmp_path):
    path = os.fsdecode(b"caf\xe9.csv")

    def objective(config, trial):
        raise ValueError(f"cannot read {path}")

    study = tl.tune(objective, SPACE, metric="loss", mode="min", n_trials=2, storage=f"sqlite:///{tmp_path / 't.db'}",
                    name="s", seed=1)
    again = tl.load_study("s", storage=f"sqlite:///{tmp_path / 't.db'}")
    assert [t.state for t in again.trials] == [TrialState.FAILED] * 2
    assert all("cannot read caf" in t.error for t in again.trials) and len(study.trials) == 2


def test_numpy_budgets_and_values_are_stored_as_numbers(storage):
    """SQLite's driver stored a numpy scalar (a buffer) as a BLOB: a budget came back as bytes."""
    study = storage.create_study(record())
    made = storage.create_trial(study.id, {"x": 0.5}, lambda n: n, budget=np.int64(3))
    waiting = storage.create_trial(study.id, {"x": 0.6}, lambda n: n, TrialState.WAITING)
    claimed = storage.claim_waiting(study.id, "me", budget=np.float32(2.5))
    assert storage.finish_trial(made.id, TrialState.PAUSED, value=np.float32(0.25))
    assert storage.resume_trial(made.id, "me", np.int32(9))
    assert storage.finish_trial(made.id, TrialState.COMPLETED, value=np.float64(0.5))
    budgets = {t.id: t.budget for t in storage.trials(study.id)}
    assert budgets == {made.id: 9.0, waiting.id: 2.5} and claimed.budget == 2.5
    assert all(type(b) is float for b in budgets.values())
    assert storage.top_trials(study.id, 1, False)[0].value == 0.5


@pytest.mark.parametrize("url, secret", [
    ("postgresql://lab:pa/ss@db.example/tunelab", "pa/ss"),         # a '/' in it, not escaped
    ("postgresql://:s3cret@db.example/tunelab", "s3cret"),          # no user name
    ("postgresql://lab:p@ssword@db.example/tunelab", "ssword"),     # an '@' in it, not escaped
    ("postgresql://db.example/tunelab?user=lab&password=s3cret", "s3cret"),
])
def test_a_password_written_as_users_write_it_is_hidden(url, secret):
    shown = hide_password(url)
    assert secret not in shown and "db.example" in shown


def test_a_storage_object_printed_or_logged_hides_its_password(postgres_url):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password="s3cret").render_as_string(hide_password=False)
    store = open_storage(url)  # the test server trusts any password
    try:
        assert "s3cret" not in repr(store) and make_url(url).host in repr(store)
        study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="p", storage=store)
        assert "s3cret" not in repr(study) and make_url(url).host in repr(study)
    finally:
        store.close()


def test_a_postgresql_url_that_cannot_be_read_says_so_without_its_password():
    for url in ("postgresql://lab:s3cret@db.example:port/tunelab", "postgresql://lab:s3cret@[::1/tunelab"):
        with pytest.raises(StorageError, match="cannot be read") as caught:
            open_storage(url)
        assert "s3cret" not in str(caught.value) and "postgresql://user:password@host" in str(caught.value)


def test_a_percent_escaped_sqlite_path_opens_the_folder_it_names(tmp_path, monkeypatch):
    """The checks read the path as written (a folder 'my%20runs', which does not exist) while
    SQLAlchemy opens it decoded ('my runs'): the correctly escaped URL was refused."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my runs #2").mkdir()
    store = open_storage("sqlite:///my%20runs%20%232/t%3F.db")
    store.create_study(record())
    store.close()
    assert (tmp_path / "my runs #2" / "t?.db").is_file()
    with pytest.raises(StorageError, match="does not exist.*%25"):
        open_storage("sqlite:///no%20such/t.db")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_study_used_in_forked_processes_writes_through_connections_of_their_own(kind, tmp_path, request):
    """A child that reused its parent's PostgreSQL connection broke it for both ('This result object does
    not return rows', then a hang); each process now opens its own."""
    url = f"sqlite:///{tmp_path / 't.db'}" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    store = open_storage(url)
    study = store.create_study(record())
    store.finish_trial(store.create_trial(study.id, {"x": 0.1}, lambda n: n).id, TrialState.COMPLETED, value=1.0)
    children = []
    for child in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            signal.alarm(60)  # a child stuck on a connection it shares dies rather than hang the test
            code = 1
            try:
                for i in range(5):
                    trial = store.create_trial(study.id, {"x": child / 10 + i / 100}, lambda n: n)
                    assert store.finish_trial(trial.id, TrialState.COMPLETED, value=float(i))
                code = 0
            except BaseException as err:  # noqa: BLE001 - the parent reads the exit code
                print(f"child {child}: {err!r}", file=sys.stderr, flush=True)
            os._exit(code)
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    store.finish_trial(store.create_trial(study.id, {"x": 0.9}, lambda n: n).id, TrialState.COMPLETED, value=2.0)
    assert codes == [0, 0, 0]
    assert store.count_states(study.id) == {"completed": 17}
    store.close()


def test_changing_a_deleted_study_is_a_clear_error_in_every_storage(storage):
    """Memory raised a bare StopIteration where the databases say what happened."""
    study = storage.create_study(record())
    storage.delete_study("s")
    with pytest.raises(StorageError, match="does not exist"):
        storage.update_study(study.id, user_attrs={"note": "late"})


def test_a_value_that_is_not_json_is_named_in_a_message_of_readable_length():
    """A megabyte of bytes in a user attribute made a megabyte-long message."""
    from tunelab import _json

    with pytest.raises(TypeError, match="bytes is not JSON-serialisable") as caught:
        _json.dumps({"image": b"\x89PNG" * 250_000})
    assert len(str(caught.value)) < 300
