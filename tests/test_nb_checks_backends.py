"""Checks moved out of `nbs/03a_backends.ipynb`, where each function keeps one example: the remaining top-k cases, the
plain-text path of `chat_token_ids`, seeds and input checks, verdict spellings, multi-token words against brute force,
the context bound, `post_with_retries` against an in-process server, payload refusals, failure injection, the local
sampler's draws, and a single dead server."""
import asyncio, http.server, json, math, os, threading, time
from collections import Counter

import httpx, pytest, torch
from fastcore.test import ExceptionExpected, test_close, test_eq, test_fail, test_ne
for _f in (test_close, test_eq, test_fail, test_ne): _f.__test__ = False   # fastcore's helpers, not tests
from transformers import Qwen2Config, Qwen2ForCausalLM

from rlvr_nb.backends import (HFJudge, JudgeBackend, OpenAIJudge, RequestFailed, chat_token_ids, control_strings,
                              post_with_retries, verdict_from_logprobs, verdict_token_ids, _check_chats, _literal_ids,
                              _redact_url, _run_sync, _Spellings)
from rlvr_nb.reward import judge_messages
from rlvr_nb.toy import qwen_tokenizer, toy_tokenizer
from rlvr_nb.verify import Verdict

CHAT = [{'role': 'system', 'content': 'You are a helpful assistant.'}, {'role': 'user', 'content': 'Is 5 = 5?'}]

@pytest.fixture(scope='module')
def qtok(): return qwen_tokenizer()

def _qwen2(qtok, positions=None):
    torch.manual_seed(0)
    kw = {} if positions is None else dict(max_position_embeddings=positions)
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=len(qtok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4, pad_token_id=qtok.pad_token_id, **kw)).eval()

@pytest.fixture(scope='module')
def tiny(qtok): return _qwen2(qtok)

def test_verdict_from_logprobs_more_cases():
    v = verdict_from_logprobs('Yes', {'Yes': math.log(0.5)}, emitted_logprob=math.log(0.5))  # not exactly 'YES'
    test_eq(v.label, None); test_eq(v.parse_failure, True); test_eq(v.reward('soft'), 0.0)

    v = verdict_from_logprobs(14004, {8996: math.log(0.1)}, yes=14004, no=8996, emitted_logprob=math.log(0.85))
    test_eq(v.label, 'YES'); test_close(v.p_yes, 0.85); test_close(v.p_no, 0.1)
    test_eq(verdict_from_logprobs(None, None), Verdict(None, 0.0, 0.0))
    # the emitted verdict's probability is missing or unreadable: the emitted word gets 1, the other 0, never the reverse
    st = Counter()
    for top_ in (None, {}, {'YES': float('nan')}, {'YES': 'n/a'}, {'YES': float('-inf')}):
        test_eq(verdict_from_logprobs('NO', {k.replace('YES', 'NO'): x for k, x in (top_ or {}).items()}, stats=st).soft, 0.0)
        test_eq(verdict_from_logprobs('YES', top_, stats=st).soft, 1.0)
    test_eq(st['logprob_missing'], 10)
    v = verdict_from_logprobs('YES', {'YES': 1e-7, 'NO': math.log(0.2)}, stats=st)      # a positive logprob is clamped
    test_eq((v.p_yes, st['logprob_clamped']), (1.0, 1))

def test_chat_token_ids_plain_text(qtok):
    # ordinary text: exactly the ids of the plain rendering, and the literal path agrees with it piece by piece
    plain = judge_messages('What is 2 + 3?', 'Therefore, the answer is 5', '5')
    test_eq(chat_token_ids(qtok, [plain])[0], qtok(qtok.apply_chat_template(plain, add_generation_prompt=True, tokenize=False), add_special_tokens=False)['input_ids'])
    test_eq(_literal_ids(qtok, plain, True, control_strings(qtok)), chat_token_ids(qtok, [plain])[0])

def test_judge_backend_seeds_checks_and_sampler():
    j = JudgeBackend(seed=3)
    s1, s2 = j._seeds(4), j._seeds(4)
    test_ne(JudgeBackend(seed=4)._seeds(4), s1)
    test_fail(lambda: _check_chats([[{'role': 'user'}]]), contains='chat 0')
    test_fail(lambda: _check_chats('hello'), contains='list of chats')
    test_fail(lambda: JudgeBackend(top_logprobs=0), contains='top_logprobs')
    vs = [Verdict('NO', 0.5, 0.3)] * 1000
    loc = JudgeBackend(seed=0, sampler='local')._sample_locally(vs)
    c = Counter(v.label for v in loc); assert 450 < c['YES'] < 550 and 250 < c['NO'] < 350, c
    test_eq(JudgeBackend(sampler='engine')._sample_locally(vs), vs)   # the engine sampler leaves labels alone

def test_verdict_token_ids_and_spellings():
    ttok = toy_tokenizer()
    w = verdict_token_ids(ttok, ['Yes'], ['No', 'NO'])
    test_fail(lambda: verdict_token_ids(ttok, ['YES', 'YESNO'], ['NO']), contains='start the other')
    test_fail(lambda: verdict_token_ids(ttok, ['YES'], ['YES']), contains='share token ids')
    sp = _Spellings(w)
    test_eq((sp.paths, sp.depth, sp.tokens), ([(48,), (59,)], 2, [48, 59, 81, 267, 483]))
    # P(w) from a table of next-token log-probabilities after each forced prefix; greedy follows the argmax path
    lp = {(): {59: math.log(.5), 48: math.log(.2), 483: math.log(.1)}, (59,): {267: math.log(.8)}, (48,): {81: math.log(.5)}}
    p_yes, p_no, _ = sp.probs(lambda pre, t: lp[pre].get(t, -math.inf))
    test_close((p_yes, p_no), (.5 * .8, .2 * .5 + .1))
    test_eq([sp.follow(lambda pre, a=a: a.get(pre)) for a in ({(): 59, (59,): 267}, {(): 59, (59,): 81}, {(): 483}, {(): 7})],
            ['YES', None, 'NO', None])
    test_eq([sp.match(g) for g in ([59, 267, 5], [59], [483, 59], [48, 81])], ['YES', None, 'NO', 'NO'])

def test_hfjudge_verdict_words(tiny, qtok):
    hj = HFJudge(tiny, qtok, sample=False)
    test_eq((hj.verdict_tokens, hj.multi_token_words), ({'YES': [14004], 'NO': [8996]}, ()))
    test_fail(lambda: HFJudge(tiny, qtok, extra_no=('NOPE',)), contains='start the other')   # 'NOPE' = 'NO' + 'PE'

def brute(model, x, tokens):
    "P(word) and the greedy label's path check, from one full forward of prompt + word."
    with torch.no_grad(): lp = model(torch.tensor([x + tokens])).logits[0].float().log_softmax(-1)
    rows = lp[len(x) - 1:]
    return math.exp(sum(float(rows[i, t]) for i, t in enumerate(tokens))), [int(r.argmax()) for r in rows[:len(tokens)]]

def test_hfjudge_multi_token_words_match_brute_force(tiny, qtok):
    group = [judge_messages('What is 2 + 3?', f'Therefore, the answer is {x}', '5') for x in (5, 6, 7)]   # one question
    for yes, no in (('Maybe yes', 'Maybe no'), ('YESNO', 'NO')):
        mj = HFJudge(tiny, qtok, sample=False, yes=yes, no=no, prefix_sharing=False)
        sj = HFJudge(tiny, qtok, sample=False, yes=yes, no=no, prefix_sharing=True)
        a, b = mj.verdicts(group), sj.verdicts(group, keys=['q'] * 3)
        for va, vb, x in zip(a, b, mj.encode_chats(group)):
            (py, am_y), (pn, am_n) = brute(tiny, x, mj.verdict_tokens[yes]), brute(tiny, x, mj.verdict_tokens[no])
            for v in (va, vb): assert math.isclose(v.p_yes, py, rel_tol=1e-4) and math.isclose(v.p_no, pn, rel_tol=1e-4), (v, py, pn)
            want = 'YES' if am_y == mj.verdict_tokens[yes] else 'NO' if am_n == mj.verdict_tokens[no] else None
            test_eq((va.label, vb.label), (want, want))
    test_eq(mj.multi_token_words, ('YESNO',)); test_eq((mj.yes_ids, mj.no_ids), ([14004], [8996]))

def test_hfjudge_context_bounds_max_length(qtok):
    cj = HFJudge(_qwen2(qtok, 64), qtok, sample=False)
    test_eq((cj.context_length, cj.max_length), (64, 64))
    judge_chat = judge_messages('What is 2 + 3?', 'Therefore, the answer is 5', '5')
    long_v, short_v = cj.verdicts([judge_chat, [{'role': 'user', 'content': 'Is 5 = 5?'}]])
    test_eq((long_v.judge_error, short_v.judge_error), (True, False)); test_eq(cj.stats['failed_requests'], 1)
    test_eq(HFJudge(_qwen2(qtok, 64), qtok, yes='YESNO', max_length=1000).max_length, 63)   # room for the forced token
    test_fail(lambda: HFJudge(_qwen2(qtok, 8), qtok), contains='context of 8 tokens')

class _Flaky(http.server.BaseHTTPRequestHandler):
    hits = Counter()
    def log_message(self, *a): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['content-length'])))
        _Flaky.hits[self.path] += 1
        if self.path == '/slow': time.sleep(1.0)
        status = 503 if (self.path == '/flaky' and _Flaky.hits[self.path] <= 2) else (400 if self.path == '/bad' else 200)
        out = json.dumps({'echo': body, 'auth': self.headers.get('authorization')}).encode()
        self.send_response(status); self.send_header('content-type', 'application/json')
        if status == 503: self.send_header('retry-after', '0')
        self.send_header('content-length', str(len(out))); self.end_headers()
        try: self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError): pass  # the client timed out first (/slow)

def test_post_with_retries_in_process_server():
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f'http://127.0.0.1:{srv.server_address[1]}'
    async def _demo():
        retried = []
        async with httpx.AsyncClient(timeout=10) as c:
            ok = await post_with_retries(c, base + '/flaky', {'x': 1}, on_retry=lambda a, e: retried.append(e))
            with ExceptionExpected(RequestFailed, regex='HTTP 400'): await post_with_retries(c, base + '/bad', {}, backoff=0)
        async with httpx.AsyncClient(timeout=0.3) as c:  # the server sleeps 1 s on /slow
            with ExceptionExpected(RequestFailed, regex='ReadTimeout'): await post_with_retries(c, base + '/slow', {}, retries=1, backoff=0)
        return ok, retried
    try:
        ok, retried = _run_sync(_demo)
        test_eq(ok['echo'], {'x': 1}); test_eq(len(retried), 2); test_eq(_Flaky.hits['/flaky'], 3)
        test_eq(_Flaky.hits['/bad'], 1); test_eq(_Flaky.hits['/slow'], 2)
    finally: srv.shutdown()
    test_eq(_redact_url('https://user:pw@host/v1'), 'https://***@host/v1')

def test_openai_judge_refusals(qtok):
    test_fail(lambda: OpenAIJudge('http://h/v1', 'j', endpoint='completions'), contains='tokenizer')
    test_fail(lambda: OpenAIJudge('http://h/v1', 'j', endpoint='embeddings'), contains="'chat' or 'completions'")
    test_fail(lambda: OpenAIJudge('http://h/v1', 'j', tokenizer=qtok, yes='YESNO'), contains='chat endpoint')
    test_fail(lambda: OpenAIJudge('http://h/v1', 'j', endpoint='completions', tokenizer=qtok, yes='YESNO', send_token_ids=False),
              contains='token-id prompts')

class _Nasty(http.server.BaseHTTPRequestHandler):
    "model 'bare': a verdict without logprobs (YES iff the prompt ends in '?'); 'drip': one byte a second; 'later': 503 + Retry-After: 30."
    def log_message(self, *a): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['content-length'])))
        if body['model'] == 'later':
            self.send_response(503); self.send_header('retry-after', '30'); self.send_header('content-length', '0'); self.end_headers(); return
        tok = 'YES' if body['messages'][-1]['content'].endswith('?') else 'NO'
        out = json.dumps({'choices': [{'message': {'content': tok}}]}).encode()
        self.send_response(200); self.send_header('content-length', str(len(out))); self.end_headers()
        try:
            for k in range(len(out)):
                self.wfile.write(out[k:k + 1]); self.wfile.flush()
                if body['model'] == 'drip': time.sleep(1.0)
        except (BrokenPipeError, ConnectionResetError): pass

def test_openai_failure_injection():
    "No log-probabilities: the emitted word decides; a trickling server and 30 s Retry-After waits end at the deadlines."
    nsrv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Nasty); nsrv.daemon_threads = True
    threading.Thread(target=nsrv.serve_forever, daemon=True).start()
    nurl = f'http://127.0.0.1:{nsrv.server_address[1]}/v1'
    ask = lambda t: [CHAT[0], {'role': 'user', 'content': t}]
    try:
        bare = OpenAIJudge(nurl, 'bare', sample=False)
        vs = bare.verdicts([ask('Is 5 = 5?'), ask('Is 5 = 6.')])
        test_eq([(v.label, v.reward('soft')) for v in vs], [('YES', 1.0), ('NO', 0.0)])
        test_eq((bare.stats['no_logprobs'], bare.stats['logprob_missing']), (2, 2))

        t0 = time.monotonic()
        drip = OpenAIJudge(nurl, 'drip', timeout=2, request_timeout=3, retries=0)
        test_eq(drip.verdicts([ask('Is 5 = 5?')])[0].label, None)
        t_drip = time.monotonic() - t0
        t0 = time.monotonic()
        later = OpenAIJudge(nurl, 'later', retries=3, request_timeout=60, batch_timeout=2)
        test_eq([v.label for v in later.verdicts([ask('Is 5 = 5?')] * 7)], [None] * 7)
        t_later = time.monotonic() - t0
        assert t_drip < 5 and t_later < 4, (t_drip, t_later)
        assert later.stats['deadline_exceeded'] >= 1
    finally: nsrv.shutdown()

# ------------------------------------------------------------------ vLLM (flag vllm): the notebook's real-engine checks
@pytest.fixture(scope='module')
def vllm_judge(vllm_server_soon):  # the session's shared server (when a selected test needs it) boots while the engine loads
    "The notebook's in-process engine on the tiny fixture judge, its greedy verdicts of the fixture chats, and the model folder."
    import sys; from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from vllm_fixtures import tiny_qwen2_dir, judge_chats, TRIPLES
    from rlvr_nb.backends import VLLMJudge, vllm_cpu_env
    vllm_cpu_env()
    model_dir = tiny_qwen2_dir()
    vj = VLLMJudge(model_dir, sample=False, dtype='float32', max_model_len=2048, enforce_eager=True)
    chats = judge_chats(TRIPLES)
    return vj, chats, vj.verdicts(chats), model_dir, TRIPLES

@pytest.mark.vllm
def test_vllm_sampling_seeds_and_top1(vllm_judge):
    from rlvr_nb.backends import VLLMJudge
    vj, chats, greedy, _, _ = vllm_judge
    sj = VLLMJudge(vj.llm, sample=True, seed=0)
    draws = [v.label for _ in range(5) for v in sj.verdicts(chats)]
    test_eq([v.label for v in VLLMJudge(vj.llm, seed=0).verdicts(chats)], draws[:len(chats)])
    k1 = VLLMJudge(vj.llm, sample=False, top_logprobs=1).verdicts(chats)
    test_eq([v.label for v in k1], [v.label for v in greedy])
    for a, b in zip(k1, greedy): test_close(a.soft, b.soft, eps=1e-5)  # the verdict's own probability is exact

@pytest.mark.vllm
def test_vllm_local_sampler_and_multi_token_words_match_hf(vllm_judge):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from rlvr_nb.backends import VLLMJudge
    from rlvr_nb.reward import GenerativeVerifier
    vj, chats, _, model_dir, _ = vllm_judge
    hfv = GenerativeVerifier(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
                             AutoTokenizer.from_pretrained(model_dir), sample=True, seed=7)
    lj = VLLMJudge(vj.llm, sample=True, sampler='local', seed=7)
    for _ in range(3):
        a, b = lj.verdicts(chats), hfv.judge_chats(chats)
        test_eq([v.label for v in a], [v.label for v in b])
    words = dict(yes='YESNO', no='NO')
    mv, mh = VLLMJudge(vj.llm, sample=False, **words), HFJudge(hfv.model, hfv.tokenizer, sample=False, **words)
    a, b = mv.verdicts(chats), mh.verdicts(chats)
    test_eq([v.label for v in a], [v.label for v in b])
    for x, y in zip(a, b): assert math.isclose(x.p_yes, y.p_yes, rel_tol=2e-2) and abs(x.p_no - y.p_no) < 1e-3, (x, y)
    ml, hl = VLLMJudge(vj.llm, sampler='local', seed=5, **words), HFJudge(hfv.model, hfv.tokenizer, seed=5, **words)
    test_eq([v.label for v in ml.verdicts(chats)], [v.label for v in hl.verdicts(chats)])

@pytest.mark.vllm
def test_generative_verifier_over_vllm(vllm_judge):
    from rlvr_nb.reward import GenerativeVerifier
    vj, _, greedy, _, TRIPLES = vllm_judge
    qs, rs, refs = map(list, zip(*TRIPLES))
    gv = GenerativeVerifier(vj)
    vs = gv.judge(qs, rs, refs)   # equal up to float noise (prefix-cache hits take a different kernel path)
    test_eq([v.label for v in vs], [v.label for v in greedy])
    for a, b in zip(vs, greedy): test_close(a.p_yes, b.p_yes, eps=1e-5)

@pytest.mark.vllm
def test_vllm_openai_server_both_endpoints(vllm_judge, vllm_server, vllm_server_proc, monkeypatch):
    # the session's shared server (conftest.py): python -m vllm.entrypoints.openai.api_server --model <this model folder> ...
    # --served-model-name tiny ... --api-key ...; the judge sends the key from the environment
    from vllm_fixtures import SHARED_SERVER_KEY
    _, chats, greedy, model_dir, _ = vllm_judge
    test_eq(vllm_server_proc.model_dir, model_dir)
    monkeypatch.setenv('OPENAI_API_KEY', SHARED_SERVER_KEY)
    for ep in ('chat', 'completions'):
        oj = OpenAIJudge(vllm_server, 'tiny', endpoint=ep, sample=False, tokenizer=str(model_dir))
        vs = oj.verdicts(chats)
        test_eq([v.label for v in vs], [v.label for v in greedy])
        for a, b in zip(vs, greedy): test_close(a.p_yes, b.p_yes, eps=1e-3); test_close(a.p_no, b.p_no, eps=1e-3)


@pytest.mark.vllm
def test_vllm_request_parameters_and_prompts(vllm_judge):
    "One request: as many new tokens as the longest verdict word, greedy; a forced prefix reads one greedy token; inputs are token ids."
    from fastcore.test import test_eq as check_eq
    from rlvr_nb.backends import chat_token_ids
    vj, chats, _, _, _ = vllm_judge
    p = vj.sampling_params([7])[0]
    check_eq((p.max_tokens, p.temperature, p.logprobs, p.seed), (1, 0.0, 20, None))
    check_eq((vj.forced_params().max_tokens, vj.forced_params().temperature), (1, 0.0))
    check_eq(vj.prompts(chats[:1])[0]['prompt_token_ids'], chat_token_ids(vj.llm.get_tokenizer(), chats[:1])[0])

def test_local_sampler_draws_and_engine_seed_in_payload():
    # the local sampler: the hf backend's draws, `torch.rand(n, generator=Generator().manual_seed(seed), dtype=float64)`
    vs = [Verdict('NO', 0.5, 0.3)] * 1000
    loc = JudgeBackend(seed=0, sampler='local')._sample_locally(vs)
    u = torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    test_eq([v.label for v in loc], ['YES' if x < 0.5 else ('NO' if x < 0.8 else None) for x in u.tolist()])
    chat = CHAT
    test_eq(OpenAIJudge('http://h/v1', 'j', seed=1).payload(chat, seed=7)['seed'], 7)

def test_openai_dead_port_is_counted_judge_errors():
    import socket
    chat = CHAT
    with socket.socket() as so: so.bind(('127.0.0.1', 0)); closed_port = so.getsockname()[1]  # nothing listens there
    dead = OpenAIJudge(f'http://127.0.0.1:{closed_port}/v1', 'judge', retries=1, backoff=0.01, timeout=2)
    vs = dead.verdicts([chat] * 2)
    test_eq([v.label for v in vs], [None, None]); test_eq(dead.stats['failed_requests'], 2); test_eq(dead.stats['retries'], 2)
