#!/usr/bin/env python3
"""Browser test of the console's History page and the dry-run preview before Save. Both need the API of the history
issue (`as_of=` on reads + `GET /api/history/diff`, `?dry_run=true` on writes), built on other branches: this file is
enabled after they are merged, with `CONSOLE_TEST=Tests/console/console_test_history.py ops/console-test`.
Exits 1 when the controller's OpenAPI document does not offer them (the console then hides both).
Same environment as console_test.py (ops/console-test sets it); waits on conditions with time limits only.
"""
import json
import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(__file__))
from console_test import BASE, CHROMIUM, NET, TOKEN, call, peers_by_name, shot, sign_in, wait_for  # noqa: E402

expect.set_options(timeout=15_000)


def main():
    doc = call("GET", "/api/openapi.json")[1]
    paths = doc.get("paths", {})
    params = lambda op: [p.get("name") for p in (op or {}).get("parameters", [])]  # noqa: E731
    if "/api/history/diff" not in paths or "as_of" not in params(paths["/api/routes"].get("get")) \
            or "dry_run" not in params(paths["/api/routes"].get("post")):
        print("FAIL: this controller's API has no as_of / history diff / dry_run; the History page and the preview are hidden", file=sys.stderr)
        sys.exit(1)
    wait_for("three agents connected", lambda: len([p for p in peers_by_name().values() if p["connected"]]) == 3, timeout=60)
    peers = peers_by_name()
    az_a = peers["aws-nb-europe-router-az-a"]["id"]
    all_group = call("GET", "/api/groups?name=All")[1][0]["id"]
    body = {"network_id": NET, "description": "Production VPC in Frankfurt", "network": "172.31.0.0/16", "peer": az_a,
            "metric": 9999, "masquerade": True, "groups": [all_group], "enabled": True}
    status, route, headers = call("POST", "/api/routes", body)
    assert status == 200, (status, route)
    before = int(headers["X-Routeplane-Sequence"])

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        sign_in(page)

        # --- Dry run before Save: "this change reaches N peers", nothing recorded.
        events_before = len(call("GET", "/api/events")[1])
        page.get_by_role("button", name=f"Configure {NET}").click()
        page.get_by_role("dialog", name=f"Configure {NET}").get_by_role("button", name="Edit").click()
        edit = page.get_by_role("dialog", name=f"Edit route {NET}")
        edit.get_by_label("Metric").fill("10")
        edit.get_by_role("button", name="Preview").click()
        result = edit.locator(".dry-run")
        expect(result).to_contain_text(re.compile(r"This change reaches [1-9]\d* peers?"))
        shot(page, "11-dry-run-preview")
        assert call("GET", f"/api/routes/{route['id']}")[1]["metric"] == 9999, "the dry run changed nothing"
        assert len(call("GET", "/api/events")[1]) == events_before, "the dry run recorded nothing"
        with page.expect_response(lambda r: "/api/routes/" in r.url and r.request.method == "PUT" and "dry_run" not in r.url) as saved:
            edit.get_by_role("button", name="Save changes").click()
        assert saved.value.status == 200
        wait_for("metric 10 saved", lambda: call("GET", f"/api/routes/{route['id']}")[1]["metric"] == 10, timeout=10)

        # --- History: the route as it was, and the diff against now.
        page.get_by_role("link", name="History").click()
        page.get_by_label(re.compile("^As of")).fill(str(before))
        page.get_by_role("button", name="Show routes then").click()
        expect(page.locator(f'.history-results tr[data-route-id="{route["id"]}"]')).to_contain_text("9999")
        page.get_by_role("button", name="Diff against now").click()
        changed = page.locator(f'.object-changes li[data-id="{route["id"]}"]')
        expect(changed).to_contain_text("metric")
        expect(changed).to_contain_text("9999")
        shot(page, "12-history")
        page.get_by_label(re.compile("^As of")).fill("not-a-point")
        page.get_by_role("button", name="Show routes then").click()
        expect(page.locator('[data-field="as_of"] .field-error')).to_be_visible()
        browser.close()
    print("ok - dry-run preview reaches peers and records nothing; history shows the route as it was and the diff")


if __name__ == "__main__":
    main()
