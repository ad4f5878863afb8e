"""Command line: ``python -m local_sagemaker serve [--host H] [--port P] [--data-dir DIR]``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

from local_sagemaker.iam import Authorizer, PolicyError, load_policy, offline_values
from local_sagemaker.server import Emulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local_sagemaker",
                                     description="Local SageMaker emulator (offline).")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator's HTTP endpoint")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default 127.0.0.1: loopback only)")
    serve.add_argument("--port", type=int, default=4566, help="port (default 4566; 0 = any free)")
    serve.add_argument("--data-dir", type=Path, default=None,
                       help="keep jobs, registry and endpoints here across restarts")
    serve.add_argument("--workers", type=int, default=4, help="jobs that run at once (default 4)")
    serve.add_argument("--region", default="us-east-1", help="region shown in ARNs")
    serve.add_argument("--keep-sandboxes", action="store_true",
                       help="keep each job's sandbox directory after it ends (debugging)")
    serve.add_argument("--iam-policy", type=Path,
                       default=Path(os.environ["LOCAL_SAGEMAKER_IAM_POLICY"])
                       if os.environ.get("LOCAL_SAGEMAKER_IAM_POLICY") else None,
                       help="refuse the Airflow identity's calls (access key 'test') outside this "
                            "IAM policy document (default: $LOCAL_SAGEMAKER_IAM_POLICY; none: no checks)")
    serve.add_argument("--iam-execution-policy", type=Path,
                       default=Path(os.environ["LOCAL_SAGEMAKER_IAM_EXECUTION_POLICY"])
                       if os.environ.get("LOCAL_SAGEMAKER_IAM_EXECUTION_POLICY") else None,
                       help="also refuse what jobs and model servers do as the execution role "
                            "(S3 staging, downloads, logs) outside this policy (needs --iam-policy)")
    serve.add_argument("--iam-audit", type=Path, default=None,
                       help="append every authorization decision (JSON lines) to this file")
    serve.add_argument("--log-level", default="INFO", help="Python log level (default INFO)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    authorizer = None
    if args.iam_policy is not None:
        values = offline_values(args.region, os.environ)
        try:
            document = load_policy(args.iam_policy, values)
            execution = (None if args.iam_execution_policy is None
                         else load_policy(args.iam_execution_policy, values))
        except PolicyError as exc:
            print(f"--iam-policy: {exc}", file=sys.stderr)
            return 2
        authorizer = Authorizer(document, args.iam_audit, execution, values["SageMakerExecutionRoleArn"])
    elif args.iam_audit is not None or args.iam_execution_policy is not None:
        print("--iam-audit and --iam-execution-policy need --iam-policy", file=sys.stderr)
        return 2
    try:
        emulator = Emulator(args.host, args.port, args.data_dir, workers=args.workers,
                            region=args.region, keep_sandboxes=args.keep_sandboxes,
                            authorizer=authorizer)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # e.g. an unreadable --data-dir state file
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    # The handler only appends to a list: taking a lock there (threading.Event.set) can deadlock
    # when the signal lands while the main thread holds that same lock inside Event.wait().
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    emulator.start()
    where = f"data dir {args.data_dir}" if args.data_dir else "state in memory only"
    if args.iam_policy is not None:
        where += f"; Airflow's calls checked against {args.iam_policy}"
    print(f"local_sagemaker listening on {emulator.url} ({where})", flush=True)
    while not received:
        time.sleep(0.1)
    print("local_sagemaker stopping: jobs and model servers first", flush=True)
    emulator.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
