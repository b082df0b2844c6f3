#!/usr/bin/env python3
"""Prints a signed user report as JSON, the way a platform backend sends one to POST /v1/reports.

    sign-report.py KEY_FILE KEY_ID ITEM_ID REPORTER REASON [DETAILS]

The signature is "<key id>:" + hex(HMAC-SHA256(key, "cordon-report-v1\\n" + item_id + "\\n" + reporter)),
with the key from KEY_FILE (one line), configured in Cordon as reports.platform_keys.<KEY_ID>.
"""
import hashlib
import hmac
import json
import sys

if len(sys.argv) not in (6, 7):
    sys.exit(__doc__)
key_file, key_id, item_id, reporter, reason = sys.argv[1:6]
with open(key_file, encoding="utf-8") as f:
    key = f.read().strip().encode()
mac = hmac.new(key, f"cordon-report-v1\n{item_id}\n{reporter}".encode(), hashlib.sha256).hexdigest()
report = {"item_id": item_id, "reason": reason, "reporter": reporter, "signature": f"{key_id}:{mac}"}
if len(sys.argv) == 7:
    report["details"] = sys.argv[6]
print(json.dumps(report))
