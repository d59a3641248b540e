#!/usr/bin/env python3
"""Beam search the naive way, for bench/remote_bench.sh: an orchestrator that talks to
llama-server in text, as scripts around vLLM or llama-server usually do. Every round it sends
each beam's whole text (prompt + steps so far) as a string, and scores each candidate by sending
the PRM the whole conversation again (RLHFlow layout through the PRM's chat template, P("+") and
P("-") from the top 20 log-probabilities; a token outside them counts as 0). The servers' own
prompt caches stay on (their default), so the cost measured is the orchestration's: text
round trips, re-tokenization, re-sent prefixes, no branch sharing on the client.

    naive_beam.py GEN_URL PRM_URL PROBLEM N M MAX_TOKENS DELIMITER SEED

Prints one JSON object: seconds, requests, completion_tokens, solutions.
"""
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def main():
    gen, prm, problem, n, m, max_tokens, delim, seed = sys.argv[1:9]
    n, m, max_tokens, seed = int(n), int(m), int(max_tokens), int(seed)
    requests = 0
    completion_tokens = 0

    def step(text, used, s):
        nonlocal requests, completion_tokens
        r = post(gen + "/completion", {"prompt": problem + text, "n_predict": max_tokens - used, "stop": [delim],
                                       "temperature": 0.8, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "seed": s})
        requests += 1
        completion_tokens += r["tokens_predicted"]
        content = r["content"] + (delim if r["stop_type"] == "word" else "")
        done = r["stop_type"] in ("eos", "limit") or used + r["tokens_predicted"] >= max_tokens
        return content, r["tokens_predicted"], done

    def score(steps):
        nonlocal requests
        msgs = []
        for i, s in enumerate(steps):
            msgs.append({"role": "user", "content": (problem + " " + s.strip()) if i == 0 else s.strip()})
            if i + 1 < len(steps):
                msgs.append({"role": "assistant", "content": "+"})
        text = post(prm + "/apply-template", {"messages": msgs, "add_generation_prompt": True})["prompt"]
        r = post(prm + "/completion", {"prompt": text, "n_predict": 1, "n_probs": 20, "temperature": 0})
        requests += 2
        probs = {t["token"]: 2.718281828459045 ** t["logprob"] for t in r["completion_probabilities"][0]["top_logprobs"]}
        good, bad = probs.get("+", 0.0), probs.get("-", 0.0)
        return good / (good + bad) if good + bad > 0 else 0.0

    t0 = time.time()
    beams = [([], "", 0)] * n  # (steps, text, tokens)
    finished = []
    sample = 0
    with ThreadPoolExecutor(max_workers=n) as pool:
        for _ in range(60):
            seeds = list(range(seed * 100003 + sample, seed * 100003 + sample + len(beams)))
            sample += len(beams)
            outs = list(pool.map(lambda bs: step(bs[0][1], bs[0][2], bs[1]), zip(beams, seeds)))
            cands = [(b[0] + [c], b[1] + c, b[2] + k, done) for b, (c, k, done) in zip(beams, outs)]
            scores = list(pool.map(lambda c: score(c[0]), cands))
            live = []
            for c, s in zip(cands, scores):
                (finished if c[3] else live).append((s, c))
            if len(finished) >= n or not live:
                break
            live.sort(key=lambda x: -x[0])
            keep = live[:max(1, n // m)]
            beams = [k[1][:3] for k in keep for _ in range(m)]
    print(json.dumps({"seconds": time.time() - t0, "requests": requests, "completion_tokens": completion_tokens,
                      "solutions": len(finished)}))


if __name__ == "__main__":
    main()
