"""The web interface in a real browser (Debian's Chromium driven by Playwright) against the real service: the
artist's, the analyst's and the admin's journeys, the security properties a browser can see, and accessibility
(axe-core). The journeys share one live service per database, in order: the admin's audit log shows the reads
the artist and the analyst made. Screenshots of every page go to docs/ui/.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
AXE = REPO_ROOT / "tests" / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "docs" / "ui"
# Flags for a closed network: no background connections Chromium would make to Google's hosts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
BANK_IMAGES = ("aaa-orig.jpg", "high-contrast.jpg", "square-512x512.jpg")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def journeys(live_service):
    """What the journeys saw: every request the browser made, and the names of the pages screenshotted."""
    return {"requests": [], "screenshots": set()}


def new_page(browser, live_service, journeys, **options):
    context = browser.new_context(base_url=live_service.url, accept_downloads=True, **options)
    page = context.new_page()
    page.on("request", lambda request: journeys["requests"].append(request.url))
    page.set_default_timeout(60_000)
    return page


def sign_in(page, key: str) -> None:
    page.goto("/ui/sign-in")
    page.fill("#api_key", key)
    page.press("#api_key", "Enter")
    page.wait_for_url("**/ui/")


def screenshot(page, journeys, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    journeys["screenshots"].add(name)


def wait_until_finished(page) -> None:
    page.wait_for_function("() => !document.querySelector('.progress') || "
                           "!['queued', 'running'].some(s => document.querySelector('[data-progress-text]')"
                           ".textContent.includes(s))", timeout=180_000)


def edited_copies(fixtures_dir: Path) -> list[tuple[str, bytes]]:
    out = []
    for number, name in enumerate(BANK_IMAGES):
        image = Image.open(fixtures_dir / "pdq" / "bridge-mods" / name).convert("RGB")
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
        image = ImageEnhance.Brightness(image).enhance(1.1)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
        out.append((f"edited-{number}.jpg", buffer.getvalue()))
    return out


def unrelated_images(fixtures_dir: Path, generated: int) -> list[tuple[str, bytes]]:
    out = [(p.name, p.read_bytes()) for p in sorted((fixtures_dir / "faces").glob("*-1.jpg"))[:3]]
    rng = np.random.default_rng(11)
    for number in range(generated):  # smooth random fields: real-looking texture, unrelated to every bank image
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((160, 160), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append((f"generated-{number:02d}.png", buffer.getvalue()))
    return out


def test_artist_journey(browser, live_service, journeys, fixtures_dir, tmp_path):
    page = new_page(browser, live_service, journeys)
    sign_in(page, live_service.keys["artist"])
    screenshot(page, journeys, "home-artist")
    page.click("text=New age progression")
    photo = fixtures_dir / "faces" / "biden-2.jpg"
    page.set_input_files("#photo", str(photo))
    # The preview shows once the browser has decoded the chosen file (asynchronously: is_visible() alone raced it).
    page.wait_for_selector("[data-preview-for=photo]", state="visible", timeout=10_000)
    page.fill("#age", "8")
    page.select_option("#sex", "m")
    page.fill("#target_ages", "12, 16")
    page.set_input_files("#relative_photo_1", str(fixtures_dir / "faces" / "obama-2.jpg"))
    page.fill("#relative_relation_1", "father")
    page.fill("#relative_age_1", "40")
    screenshot(page, journeys, "age-progression-form")
    page.click("text=Start age progression")
    page.wait_for_url("**/ui/jobs/*")
    page.wait_for_selector("img[data-sheet]", timeout=180_000)
    page.wait_for_function("() => document.querySelector('img[data-sheet]').complete")
    assert page.eval_on_selector("img[data-sheet]", "img => img.naturalWidth") > 0
    assert "APPROXIMATION" in page.inner_text(".label-note")
    page.locator("[data-overlay-toggle]").first.check()
    assert "overlay-12.png" in page.locator(".target img").first.get_attribute("src")
    screenshot(page, journeys, "age-progression-result")

    with page.expect_download() as download:
        page.click("text=Download all")
    archive = zipfile.ZipFile(download.value.path())
    assert {"sheet.png", "provenance.json", "age-12.png", "age-16.png"} <= set(archive.namelist())
    provenance = json.loads(archive.read("provenance.json"))
    assert provenance["input"]["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()

    page.click("text=Re-run with changed parameters")
    assert page.input_value("#target_ages") == "12, 16"
    assert page.input_value("#relative_relation_1") == "father"
    page.goto("/ui/jobs")
    assert page.locator("table.data tbody tr").count() == 1
    screenshot(page, journeys, "jobs")
    page.context.close()


def test_analyst_journey(browser, live_service, journeys, fixtures_dir, tmp_path):
    page = new_page(browser, live_service, journeys)
    sign_in(page, live_service.keys["analyst"])
    page.click("header >> text=Banks")
    screenshot(page, journeys, "banks")
    page.fill("#name", "web-case")
    page.click("text=Create bank")
    page.wait_for_url("**/ui/banks/web-case")
    page.set_input_files("#enrol-files", [str(fixtures_dir / "pdq" / "bridge-mods" / n) for n in BANK_IMAGES])
    page.click("form[action$='/enrol'] button")
    assert page.inner_text("[data-enrolled]").startswith("Enrolled 3 images")
    assert page.inner_text("[data-record-count]") == "3"
    screenshot(page, journeys, "bank")

    edited, unrelated = edited_copies(fixtures_dir), unrelated_images(fixtures_dir, generated=50)
    batch = tmp_path / "tipline.zip"
    with zipfile.ZipFile(batch, "w") as archive:
        for name, data in edited + unrelated:
            archive.writestr(name, data)
    page.click("header >> text=New match batch")
    page.set_input_files("#files", str(batch))
    page.check("input[name=banks][value=web-case]")
    screenshot(page, journeys, "match-batch-form")
    page.click("text=Upload and match")
    page.wait_for_url("**/ui/jobs/*")
    job_url = page.url
    wait_until_finished(page)
    page.goto(job_url)
    total = len(edited) + len(unrelated)
    assert page.inner_text("[data-report-count]").startswith(f"{total} items")
    screenshot(page, journeys, "match-report")

    page.goto(f"{job_url}?verdict=match")
    rows = page.locator("table.report tbody tr")
    names = sorted(rows.nth(i).locator("td.name").inner_text() for i in range(rows.count()))
    assert names == [f"tipline.zip/{name}" for name, _ in edited]
    page.goto(f"{job_url}?sort=index")
    verdicts = {}
    for page_number in (1, 2):
        page.goto(f"{job_url}?sort=index&page={page_number}")
        for row in page.locator("table.report tbody tr").all():
            verdicts[row.locator("td.name").inner_text()] = row.get_attribute("data-verdict")
    assert len(verdicts) == total, "two pages of 50 hold every item"
    assert all(verdicts[f"tipline.zip/{n}"] == "match" for n, _ in edited)
    assert all(verdicts[f"tipline.zip/{n}"] != "match" for n, _ in unrelated)
    assert page.locator("a[rel=next]").count() == 0 and page.locator("a[rel=prev]").count() == 1

    page.goto(f"{job_url}?verdict=match")
    page.locator("[data-review]").first.click()
    page.wait_for_function("() => document.querySelector('[data-review-image]').naturalWidth > 0")
    screenshot(page, journeys, "match-review-obscured")
    page.click("[data-reveal]")
    page.wait_for_function("() => document.querySelector('[data-review-image]').src.includes('reveal=true')")
    page.click("[data-close]")

    with page.expect_download() as download:
        page.click("text=Download CSV")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    matched = {row["name"] for row in rows if row["status"] == "match"}
    assert matched == {f"tipline.zip/{name}" for name, _ in edited}
    assert all(row["bank"] == "web-case" for row in rows if row["status"] == "match")
    page.context.close()


def test_faces_journey(browser, live_service, journeys, fixtures_dir):
    page = new_page(browser, live_service, journeys)
    sign_in(page, live_service.keys["analyst"])
    page.click("header >> text=Faces")
    screenshot(page, journeys, "galleries")
    page.fill("#name", "web-gallery")
    page.click("text=Create gallery")
    page.wait_for_url("**/ui/faces/web-gallery")
    for subject, photos in (("subject-o", ["obama-1.jpg", "obama-3.jpg"]), ("subject-b", ["biden-1.jpg"])):
        page.fill("#subject_id", subject)
        page.set_input_files("#photos", [str(fixtures_dir / "faces" / name) for name in photos])
        page.click("form[action$='/enrol'] button")
        page.wait_for_selector("text=Enrolled")
    assert page.locator("table.data tbody tr").count() == 2
    screenshot(page, journeys, "gallery")
    page.set_input_files("#search-photo", str(fixtures_dir / "faces" / "obama-2.jpg"))
    page.click("form[action$='/search'] button")
    page.wait_for_url("**/ui/jobs/*")
    page.wait_for_selector("table.data tbody tr", timeout=180_000)
    first = page.locator("table.data tbody tr").first.locator("td").all_inner_texts()
    assert first[1] == "subject-o" and first[4] == "match"
    screenshot(page, journeys, "face-search")
    page.goto("/ui/faces/web-gallery")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Delete >> nth=1")
    page.wait_for_function("() => document.querySelectorAll('table.data tbody tr').length === 1")
    page.context.close()


def test_admin_journey(browser, live_service, journeys):
    page = new_page(browser, live_service, journeys)
    sign_in(page, live_service.keys["admin"])
    page.click("header >> text=Keys")
    page.fill("#key-name", "temporary-service")
    page.select_option("#role", "service")
    page.click("text=Create key")
    assert page.input_value("[data-new-key]").startswith("fimg_")
    screenshot(page, journeys, "keys")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("tr[data-key-name=temporary-service] >> text=Revoke")
    page.wait_for_selector("tr[data-key-name=temporary-service] >> text=revoked")

    page.click("header >> text=Audit log")
    page.fill("#action", "read")
    page.fill("#object_type", "job_result")
    page.click("form.filters button")
    page.wait_for_url("**/ui/audit?*object_type=job_result*")
    who = page.locator("table.audit tbody td:nth-child(3)").all_inner_texts()
    assert {"web-artist", "web-analyst"} <= set(who)
    page.goto("/ui/audit?action=reveal")
    assert page.locator("table.audit tbody tr").count() == 1
    page.goto("/ui/audit?action=revoke")
    assert page.locator("table.audit tbody tr").count() == 1
    page.goto("/ui/audit")
    page.click("text=Verify chain")
    assert page.get_attribute("[data-verified]", "data-verified") == "intact"
    screenshot(page, journeys, "audit")
    page.context.close()


def test_security_in_the_browser(browser, live_service, journeys):
    page = new_page(browser, live_service, journeys)
    sign_in(page, live_service.keys["artist"])
    for path in ("/ui/banks", "/ui/keys", "/ui/audit", "/ui/match/new"):
        response = page.goto(path)
        assert response.status == 403, path
        assert page.inner_text("h1") == "Not allowed"
    screenshot(page, journeys, "forbidden")
    response = page.goto("/ui/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"

    forged = page.request.post(f"{live_service.url}/ui/age", multipart={"age": "8", "sex": "m",
                                                                     "target_ages": "12"})
    assert forged.status == 403 and "did not come from this service" in forged.text()

    [cookie] = [c for c in page.context.cookies() if c["name"] == "fimg_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("text=Sign out")
    page.wait_for_url("**/ui/sign-in")
    replay = browser.new_context(base_url=live_service.url)
    replay.add_cookies([cookie])
    response = replay.new_page().goto("/ui/jobs")
    assert response.url.endswith("/ui/sign-in?next=/ui/jobs"), "the ended session is refused"
    replay.close()
    page.context.close()

    origin = urlparse(live_service.url).netloc
    assert journeys["requests"], "the journeys made requests"
    assert {urlparse(url).netloc for url in journeys["requests"] if not url.startswith(("blob:", "data:"))} \
        == {origin}


def test_pages_have_no_serious_accessibility_violations(browser, live_service, journeys):
    page = new_page(browser, live_service, journeys, bypass_csp=True)  # axe is injected as a script
    problems = {}

    def check(path: str) -> None:
        page.goto(path)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        serious = [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result["violations"]
                   if v["impact"] in ("serious", "critical")]
        if serious:
            problems[path] = serious

    check("/ui/sign-in")
    screenshot(page, journeys, "sign-in")
    sign_in(page, live_service.keys["admin"])
    jobs = live_service.app.jobs.list(live_service.app.keys.authenticate(live_service.keys["admin"]))
    paths = ["/ui/", "/ui/age/new", "/ui/match/new", "/ui/jobs", "/ui/banks", "/ui/banks/web-case", "/ui/faces",
             "/ui/faces/web-gallery", "/ui/keys", "/ui/audit", *(f"/ui/jobs/{job.id}" for job in jobs)]
    for path in paths:
        check(path)
    assert not problems, problems
    page.context.close()


def test_artist_journey_by_keyboard_alone(browser, live_service, journeys, fixtures_dir):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = new_page(browser, live_service, journeys)
    page.goto("/ui/sign-in")
    # the key field has focus on arrival: the browser applies autofocus once it has laid the page out, which
    # a loaded machine does after `goto` returns (keys typed before it went nowhere on CI)
    page.wait_for_function("document.activeElement && document.activeElement.id === 'api_key'")
    page.keyboard.type(live_service.keys["artist"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/")

    def tab_to(selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
                return
        raise AssertionError(f"{selector} cannot be reached with the Tab key")

    tab_to("a[href='/ui/age/new']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/age/new")
    tab_to("#photo")
    chooser = None
    for key in ("Space", "Enter", "Space", "Enter"):  # a focused file input opens its chooser on either key
        try:
            with page.expect_file_chooser(timeout=5_000) as opened:
                page.keyboard.press(key)
            chooser = opened.value
            break
        except PlaywrightTimeout:
            assert page.evaluate("() => document.activeElement.id") == "photo"
    assert chooser is not None, "the photo's file chooser opens from the keyboard"
    chooser.set_files(str(fixtures_dir / "faces" / "biden-2.jpg"))
    for selector, text in (("#age", "9"), ("#target_ages", "14")):
        tab_to(selector)
        page.keyboard.type(text)
    tab_to("#sex")
    page.keyboard.press("ArrowDown")  # female -> male
    tab_to("form[action='/ui/age'] button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/jobs/*")
    page.wait_for_selector("img[data-sheet]", timeout=180_000)
    assert page.eval_on_selector("img[data-sheet]", "img => img.complete && img.naturalWidth") > 0
    page.context.close()
