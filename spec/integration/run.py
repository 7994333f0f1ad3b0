#!/usr/bin/python3
"""run: runs the integration tests (spec/integration/test_*.py) against $FUGLU_BIN.

    spec/integration/run.py [NAME...]     NAME = module, module.Class or module.Class.test

Prints one line per test, the daemon's log tail for every failure, and ends with
"integration: N passed, N failed, N skipped". Exit status 1 if anything failed or errored.
"""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True      # keep __pycache__ out of the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class Result(unittest.TextTestResult):
    passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        Result.passed += 1

    def _log_tail(self, test):
        tail = getattr(test, "daemon_log_tail", None)
        if callable(tail):
            try:
                text = tail()
            except Exception as e:      # the log is only a help; never hide the real failure
                text = "(could not read the log: %s)" % e
            if text:
                self.stream.writeln("---- daemon log (last lines) for %s ----\n%s\n----" % (test.id(), text))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._log_tail(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._log_tail(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._log_tail(test)


def main(argv):
    loader = unittest.TestLoader()
    if argv:
        suite = loader.loadTestsFromNames(argv)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Result)
    start = time.monotonic()
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = Result.passed
    print("integration: %d passed, %d failed, %d skipped (%.1f s, %s)"
          % (passed, failed, skipped, time.monotonic() - start, os.environ.get("FUGLU_BIN", "build/fuglu")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
