"""The functional core: pure decisions and encodings, no I/O (checked by the import contract).

    gates/           may this promotion / rollback / kill happen? (``decide``; kill > rollback > promote)
    verdict.py       the one eval verdict: PASS / FAIL / INCONCLUSIVE, and what each means
    release.py       content-addressed release snapshots and their verification
    audit.py         the hash-chained control-plane log: records, hashing, verification
    canonical.py     the one canonical JSON encoding hashed everywhere
    flags.py         the flagd document rendered from state, the cohort bucket every engine
                     splits alike, and the never-un-kill publish rule
    provisioning.py  what the infrastructure must be, from the bundle (shared with infra/ and the report)
    retrieval.py     BM25 over the release's corpus with a relevance floor (the context policy)
    keys.py          what a store key may be
    timefmt.py       the one timestamp format

Everything here takes its inputs as values (a clock is passed in) and returns values; a store
appears only as the ``controller.ports.Store`` Protocol.
"""
