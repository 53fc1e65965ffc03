"""The nightly scan: select patients, fetch their records in batches, decide, write back,
checkpoint (``consent-gap scan``, commands/scan.py; on a schedule, scheduler.py).

- selectors.py: which patients a run looks at (named, full, incremental; the place for new
  selectors such as a bulk export or a subscription);
- scanner.py: the run itself, batch by batch (fetch, decide, write back, checkpoint);
- wiring.py: settings to a FHIR client, its authorization, the server's preflight check and
  the evaluator bound to the run's jurisdiction; `run_scan` runs one scan;
- output.py: what a person sees (progress, the summary as text or JSON, the last run's
  status).

Exit status of the command: 0 the scan ran and wrote everything it had to (whatever it found);
1 errors during the scan (a write rejected, the server unreachable...: the summary lists them;
a stopped run resumes next time); 2 bad usage or configuration (the message names the
setting). Logs and the summary carry ids and counts only: no names, notes or tokens.
"""

from consent_gap.scan.scanner import PAGE_SIZE, Scanner, ScanOptions, ScanStopped, ScanSummary
from consent_gap.scan.wiring import SCAN_REQUIREMENTS, make_client, preflight, run_scan

__all__ = ["PAGE_SIZE", "SCAN_REQUIREMENTS", "ScanOptions", "ScanStopped", "ScanSummary",
           "Scanner", "make_client", "preflight", "run_scan"]
