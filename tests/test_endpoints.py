"""`OpenAIJudge` over several OpenAI-compatible servers: load spread with `concurrency` per server, failover from a dead,
failing or hanging server without paying its backoff on every request, refusals (HTTP 400) not sent elsewhere, every
server down (judge errors, never a YES), the counters; and the run config's `backends.judge_base_url` list and
`backends.dist_timeout`, with the config hash of existing runs unchanged."""
import hashlib, http.server, json, math, socket, sys, threading, time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from vllm_fixtures import http_endpoint

from rlvr_nb.backends import OpenAIJudge
from rlvr_nb.config import ConfigError, RunConfig, check_config
from rlvr_nb.reward import GenerativeVerifier

CHAT = [{'role': 'system', 'content': 'You are a helpful assistant.'}, {'role': 'user', 'content': 'Is 5 = 5?'}]
_YES = {'choices': [{'message': {'content': 'YES'}, 'logprobs': {'content': [
    {'token': 'YES', 'logprob': math.log(0.9), 'top_logprobs': [{'token': 'YES', 'logprob': math.log(0.9)},
                                                               {'token': 'NO', 'logprob': math.log(0.05)}]}]}}]}

def server(status: int = 200, delay: float = 0.0):
    "A handler class answering every chat request with `status` (200: a YES verdict) after `delay` s, and its counters."
    st, lock = {'n': 0, 'in_flight': 0, 'max_in_flight': 0}, threading.Lock()
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_POST(self):
            self.rfile.read(int(self.headers['content-length']))
            with lock:
                st['n'] += 1; st['in_flight'] += 1; st['max_in_flight'] = max(st['max_in_flight'], st['in_flight'])
            time.sleep(delay)
            with lock: st['in_flight'] -= 1        # before answering: the client's next request cannot overlap this one
            out = json.dumps(_YES if status == 200 else {'error': {'message': f'status {status}'}}).encode()
            try:
                self.send_response(status); self.send_header('content-type', 'application/json')
                self.send_header('content-length', str(len(out))); self.end_headers(); self.wfile.write(out)
            except (BrokenPipeError, ConnectionResetError): pass      # the client gave up on a hanging server
    return H, st

def closed_url() -> str:
    "A loopback URL nothing listens on."
    with socket.socket() as so: so.bind(('127.0.0.1', 0)); port = so.getsockname()[1]
    return f'http://127.0.0.1:{port}/v1'

def labels(vs): return [v.label for v in vs]

def test_two_servers_share_the_load_within_their_concurrency():
    (ha, a), (hb, b) = server(delay=0.05), server(delay=0.05)
    with http_endpoint(ha) as ua, http_endpoint(hb) as ub:
        j = OpenAIJudge([ua, ub], 'judge', concurrency=3, sample=False)
        t0 = time.monotonic(); vs = j.verdicts([CHAT] * 30); dt = time.monotonic() - t0
    assert labels(vs) == ['YES'] * 30 and j.stats['failed_requests'] == 0
    assert a['max_in_flight'] <= 3 and b['max_in_flight'] <= 3, (a, b)          # the limit holds per server ...
    assert a['max_in_flight'] + b['max_in_flight'] >= 5, (a, b)                 # ... and both servers work at once
    assert a['n'] + b['n'] == 30 and min(a['n'], b['n']) >= 10, (a, b)          # least busy first: an even split
    es = j.endpoint_stats
    assert list(es) == [ua, ub] and [es[ua]['requests'], es[ub]['requests']] == [a['n'], b['n']]
    assert all(e['failures'] == e['retries'] == e['failovers'] == 0 for e in es.values())
    print(f"\nsplit {a['n']}/{b['n']}, max in flight {a['max_in_flight']}/{b['max_in_flight']}, {dt:.2f} s for 30")

@pytest.mark.parametrize('bad', ['closed', 503, 'hangs'])
def test_a_bad_server_costs_no_backoff_per_request(bad):
    "Every verdict comes from the live server; the bad one is counted, skipped while it cools down, and never waited out."
    (hl, live), (hb, b) = server(delay=0.01), server(status=503 if bad == 503 else 200, delay=2.0 if bad == 'hangs' else 0.0)
    with http_endpoint(hl) as ul, http_endpoint(hb) as ub0:
        ub = closed_url() if bad == 'closed' else ub0
        j = OpenAIJudge([ub, ul], 'judge', concurrency=4, sample=False, timeout=0.3 if bad == 'hangs' else 60.0)  # retries=3, backoff=0.5
        t0 = time.monotonic(); first = j.verdicts([CHAT] * 20); t1 = time.monotonic() - t0
        t0 = time.monotonic(); again = j.verdicts([CHAT] * 20); t2 = time.monotonic() - t0
    assert labels(first) == labels(again) == ['YES'] * 20 and j.stats['failed_requests'] == 0
    es = j.endpoint_stats
    assert es[ub]['failures'] >= 1 and es[ub]['failures'] == es[ub]['failovers'] == es[ub]['requests'] and es[ub]['retries'] == 0
    assert es[ul]['requests'] == live['n'] == 40 and es[ul]['failures'] == 0
    assert j.stats['endpoint_failures'] == es[ub]['failures'] and j.stats['failovers'] == es[ub]['failovers']
    assert es[ub]['requests'] <= 4, es                      # only the first wave tried it; then it cooled down
    # a request waiting out the bad server's retries would take 0.5 + 1 + 2 s (plus 4 read timeouts of 0.3 s for a hanging one)
    assert t1 < (3.0 if bad == 'hangs' else 2.0) and t2 < 1.5, (t1, t2)
    print(f"\n{bad}: bad server {es[ub]['requests']} requests, live {es[ul]['requests']}; {t1:.2f} s then {t2:.2f} s for 20")

def test_a_refusal_is_not_sent_elsewhere():
    (h4, r4), (hl, live) = server(status=400), server()
    with http_endpoint(h4) as u4, http_endpoint(hl) as ul:
        j = OpenAIJudge([u4, ul], 'judge', concurrency=2, sample=False)
        vs = j.verdicts([CHAT] * 6)
    refused = [v for v in vs if v.judge_error]
    assert len(refused) == r4['n'] >= 1 and 'HTTP 400' in refused[0].error
    assert live['n'] == 6 - r4['n'] == sum(v.label == 'YES' for v in vs)        # nothing was sent twice
    assert j.endpoint_stats[u4]['failures'] == j.endpoint_stats[u4]['failovers'] == 0 and j.stats['failed_requests'] == r4['n']

def test_every_server_down_gives_judge_errors_never_a_yes():
    ua, ub = closed_url(), closed_url()
    j = OpenAIJudge([ua, ub], 'judge', retries=1, backoff=0.01, timeout=2, sample=False)
    vs = j.verdicts([CHAT] * 5)
    assert all(v.judge_error and v.label is None and v.p_yes == 0.0 for v in vs)
    assert j.stats['failed_requests'] == 5 and j.stats['endpoint_failures'] == 10      # each request tried both servers
    es = j.endpoint_stats
    assert es[ua]['failures'] + es[ub]['failures'] == 10 and es[ua]['failovers'] + es[ub]['failovers'] == 5
    gv = GenerativeVerifier(j)
    assert all(v.label is None for v in gv.judge(['q'] * 2, ['Therefore, the answer is 5'] * 2, ['5'] * 2))
    assert gv.stats['judge_errors'] == 2 and gv.stats['endpoint_failures'] == 14

def test_one_url_works_as_before_and_lists_are_checked():
    j = OpenAIJudge('http://user:pw@h:8000/v1/', 'm')
    assert j.base_url == 'http://user:pw@h:8000/v1' and j.base_urls == (j.base_url,) and j.url == 'http://user:pw@h:8000/v1/chat/completions'
    assert repr(j).startswith("OpenAIJudge('http://***@h:8000/v1', 'm',") and list(j.endpoint_stats) == ['http://***@h:8000/v1']
    two = OpenAIJudge(['http://a:1/v1', 'http://user:pw@b:2/v1/', 'http://a:1/v1/'], 'm')   # a server listed twice counts once
    assert two.base_urls == ('http://a:1/v1', 'http://user:pw@b:2/v1') and two.base_url == 'http://a:1/v1'
    assert "OpenAIJudge(['http://a:1/v1', 'http://***@b:2/v1'], 'm'," in repr(two) and 'pw' not in repr(two)
    for bad, msg in (([], 'non-empty list'), ([5], "entry '5'"), (['http://a/v1', 'ftp://b'], "entry 'ftp://b'"),
                     ('judge:8000/v1', "entry 'judge:8000/v1'"), (None, 'non-empty list')):
        with pytest.raises(ValueError, match=msg): OpenAIJudge(bad, 'm')

def test_generative_verifier_from_pretrained_with_a_list():
    hl, live = server()
    with http_endpoint(hl) as ul:
        dead = closed_url()
        gv = GenerativeVerifier.from_pretrained('judge', backend='openai', base_url=[dead, ul], sample=False, concurrency=2)
        assert gv.engine.base_urls == (dead, ul)
        vs = gv.judge(['What is 2 + 3?'] * 4, ['Therefore, the answer is 5'] * 4, ['5'] * 4)
    assert labels(vs) == ['YES'] * 4 and gv.stats['judge_errors'] == 0 and gv.stats['endpoint_failures'] >= 1
    assert gv.engine.endpoint_stats[ul]['requests'] == live['n'] == 4

# ------------------------------------------------------------------ the run config
# `sha256(json.dumps(cfg.hash_dict(), sort_keys=True))` of the presets before `backends.dist_timeout` existed
OLD_HASHES = {'toy': '8f70cbe540ecd6813c55ac96809e17b70ac5a222eee7827e28b72785ba7104b4',
              'paper': 'ead546ee1267113c57ec75ef19f02ab31a824ee08890da57ec4f78e25e6f002f'}

def _sha(cfg): return hashlib.sha256(json.dumps(cfg.hash_dict(), sort_keys=True).encode()).hexdigest()

def test_config_hash_of_existing_runs_unchanged():
    assert {'toy': _sha(RunConfig.toy()), 'paper': _sha(RunConfig.paper())} == OLD_HASHES
    assert 'dist_timeout' not in RunConfig.toy().hash_dict()['backends']
    assert RunConfig.toy(**{'backends.dist_timeout': 60.0}).hash_dict()['backends']['dist_timeout'] == 60.0

def test_config_judge_base_url_list_and_dist_timeout():
    kw = {'backends.judge': 'openai', 'models.grader': 'judge'}
    c = RunConfig.toy(**kw, **{'backends.judge_base_url': ['http://a:8000/v1', 'http://b:8000/v1']})
    check_config(c, cuda=False)
    assert RunConfig.from_yaml(c.save(Path(__import__('tempfile').mkdtemp()) / 'c.yaml')) == c
    check_config(RunConfig.toy(**kw, **{'backends.judge_base_url': 'http://a:8000/v1'}), cuda=False)
    for bad, msg in ((['http://a/v1', 'b:8000'], "'backends.judge_base_url': 'b:8000' is not an http(s) URL"),
                     ([], "'backends.judge_base_url' is not set"), (['http://a/v1', 3], "'backends.judge_base_url': 3 is not")):
        with pytest.raises(ConfigError, match=msg.replace('(', r'\(').replace(')', r'\)')):
            check_config(RunConfig.toy(**kw, **{'backends.judge_base_url': bad}), cuda=False)
    with pytest.raises(ConfigError, match="'backends.judge_base_url' must be"): RunConfig.from_dict({'backends': {'judge_base_url': 5}})
    assert RunConfig.toy().backends.dist_timeout == 600.0
    for bad in (0, -1.0, float('nan')):
        with pytest.raises(ConfigError, match="'backends.dist_timeout' must be positive"):
            check_config(RunConfig.toy(**{'backends.dist_timeout': bad}), cuda=False)
    assert 'gloo' in RunConfig.toy().to_yaml(explain=True)
