"""Where architecture searches train: device names checked, networks and batches moved, and on a
machine with a CUDA GPU (the GPU tests below run only there) the same results again for a seed."""

import pytest

torch = pytest.importorskip("torch")

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.nas.device import check_device, device_of, resolve_device  # noqa: E402

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def data():
    return nas.digits(batch_size=64, seed=0, limit=240)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "", 0, None, "cuda:-1"])
def test_a_device_name_that_is_none_is_refused_with_the_names_allowed(name):
    with pytest.raises(tl.ConfigError, match="device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"):
        check_device(name)


def test_device_names_are_taken_in_any_case_and_as_torch_devices():
    assert check_device(" CPU ") == "cpu"
    assert resolve_device("cpu:0") == torch.device("cpu", 0)  # as torch names it
    assert check_device(torch.device("cuda", 1)) == "cuda:1"
    assert resolve_device("auto") == (torch.device("cuda", torch.cuda.current_device()) if CUDA else torch.device("cpu"))


def test_a_device_the_machine_lacks_is_refused_when_training_starts(data):
    missing = "cuda:99" if CUDA else "cuda"
    with pytest.raises(tl.ConfigError, match="CUDA GPU"):
        resolve_device(missing)
    # built anywhere (the workers may have the GPU), refused where it runs
    objective = nas.ArchitectureObjective(data, epochs=1, device=missing)
    with pytest.raises(tl.ConfigError, match="CUDA GPU"):
        nas.retrain(nas.SearchNetwork(1, 10, 8, 3, 2).genotype(), data, epochs=1, device=missing)
    with pytest.raises(tl.ConfigError, match="CUDA GPU"):
        nas.darts_search(data, epochs=1, nodes=2, device=missing)
    assert objective.settings["device"] == missing


def test_the_default_device_is_left_out_of_the_record_and_a_chosen_one_kept(data):
    default = nas.ArchitectureObjective(nas.digits, epochs=1)
    chosen = nas.ArchitectureObjective(nas.digits, epochs=1, device="cpu")
    assert "device" not in default.settings
    assert chosen.settings["device"] == "cpu"
    assert nas.ArchitectureObjective.from_settings(chosen.settings).device == "cpu"
    assert nas.ArchitectureObjective.from_settings(default.settings).device == "auto"


def test_a_trial_keeps_the_device_it_trained_on(data):
    space = nas.cell_space(2)
    study = tl.tune(nas.ArchitectureObjective(data, epochs=1, device="cpu"), space, metric="accuracy",
                    mode="max", n_trials=1, seed=0, searcher="random")
    assert study.trials[0].user_attrs["device"] == "cpu"


def _retrain(data, device):
    torch.manual_seed(5)
    genotype = nas.SearchNetwork(1, 10, 8, 3, 2).genotype()
    return nas.retrain(genotype, data, epochs=2, seed=1, device=device)


@needs_cuda
def test_retrain_on_the_gpu_gives_the_same_result_for_a_seed_and_a_model_of_its_own(data):
    first, again = _retrain(data, "cuda"), _retrain(data, "cuda")
    assert first == again
    on_cpu = _retrain(data, "cpu")
    assert abs(first["accuracy"] - on_cpu["accuracy"]) < 0.2  # same start, other arithmetic


@needs_cuda
def test_darts_on_the_gpu_searches_derives_and_records_a_cell(data):
    found = nas.darts_search(data, epochs=2, nodes=2, seed=0, device="cuda")
    again = nas.darts_search(data, epochs=2, nodes=2, seed=0, device="cuda")
    assert found.genotype == again.genotype and found.alphas == again.alphas
    assert found.settings["device"] == "cuda"
    assert all(isinstance(v, float) for row in found.alphas["normal"] for v in row)
    # alphas of a network that stays on the GPU derive a cell too
    network = nas.SearchNetwork(1, 10, 8, 3, 2).to("cuda")
    assert isinstance(network.genotype(), nas.Genotype)
    assert len(found.curve) == 3 and found.seconds > 0


@needs_cuda
def test_an_architecture_study_on_the_gpu_records_the_device_and_reproduces(data, tmp_path):
    space = nas.cell_space(2)
    objective = nas.ArchitectureObjective(nas.digits, epochs=1, device="cuda")
    study = tl.tune(objective, space, metric="accuracy", mode="max", n_trials=2, seed=0, searcher="random",
                    storage=f"sqlite:///{tmp_path / 'gpu.db'}", name="gpu")
    assert {t.user_attrs["device"] for t in study.trials} == {"cuda:0"}
    from tunelab.analysis import reproduce
    again = reproduce(study, 0)
    assert again.exact, again.report()


@needs_cuda
def test_cudnn_flags_are_put_back_after_training(data):
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        _retrain(data, "cuda")
        assert torch.backends.cudnn.benchmark is True and torch.backends.cudnn.deterministic is before[0]
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


def test_a_model_without_weights_is_on_the_cpu():
    assert device_of(torch.nn.ReLU()) == torch.device("cpu")
