"""`rlvr ...` in one process of a `torchrun` launch, with an optional failure on purpose for the tests:
RLVR_TEST_FAULT='<stage>:<rank>:raise|kill' makes that stage raise (or its process SIGKILL itself) on that rank, at
the start of the stage. The pipeline itself is the real one."""
import os, signal, sys

import rlvr_nb.pipeline as P

fault = os.environ.get('RLVR_TEST_FAULT')
if fault:
    stage, rank, how = fault.split(':')
    counting = P._counting_judges                 # build_stages wraps every stage function with it

    def with_fault(fn):
        inner = counting(fn)
        def stage_fn(ctx):
            if ctx.name == stage and ctx.ranks.rank == int(rank):
                if how == 'kill': os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(f'a failure on purpose on rank {rank}')
            return inner(ctx)
        return stage_fn
    P._counting_judges = with_fault

from rlvr_nb.cli import main

sys.exit(main(sys.argv[1:]))
