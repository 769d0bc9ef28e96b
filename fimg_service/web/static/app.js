// fimg's web interface: progressive enhancement of plain forms and pages (no framework, no build step).
"use strict";

function showError(form, error) {
  form.querySelectorAll("[data-error-for], [data-form-error]").forEach((el) => { el.hidden = true; el.textContent = ""; });
  const fields = Object.assign({}, error.fields || {});
  if (error.field) fields[error.field] = error.message;
  let placed = false;
  for (const [name, message] of Object.entries(fields)) {
    const slot = form.querySelector(`[data-error-for="${name}"]`);
    if (slot) { slot.textContent = message; slot.hidden = false; placed = true; }
  }
  const general = form.querySelector("[data-form-error]");
  if (general && (!placed || error.rejected)) {
    let text = error.message || "That did not work.";
    (error.rejected || []).slice(0, 10).forEach((r) => { text += `\n${r.line || r.name || r.upload}: ${r.message}`; });
    general.textContent = text;
    general.hidden = false;
  }
  const first = form.querySelector("[data-error-for]:not([hidden]), [data-form-error]:not([hidden])");
  if (first) first.scrollIntoView({ block: "center" });
}

function submitAsync(event) {
  const form = event.target.closest("form[data-async]");
  if (!form) return;
  event.preventDefault();
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const button = form.querySelector("button[type=submit]");
  const progress = form.querySelector("[data-upload-progress]");
  const request = new XMLHttpRequest();
  request.open("POST", form.action);
  request.setRequestHeader("Accept", "application/json");
  if (progress) {
    progress.hidden = false;
    request.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((100 * e.loaded) / e.total);
      progress.querySelector("progress").value = percent;
      progress.querySelector("[data-percent]").textContent = `${percent}%`;
    });
  }
  request.addEventListener("load", () => {
    if (button) button.disabled = false;
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (_) { body = { message: "The service answered unexpectedly." }; }
    if (request.status < 400 && body.redirect) { window.location.assign(body.redirect); return; }
    if (progress) progress.hidden = true;
    if (request.status === 401) { body.message = (body.message || "") + " (sign in again)"; }
    showError(form, body);
  });
  request.addEventListener("error", () => {
    if (button) button.disabled = false;
    showError(form, { message: "The service could not be reached. Check the connection and try again." });
  });
  if (button) button.disabled = true;
  request.send(new FormData(form));
}

function watchProgress(box) {
  const bar = box.querySelector("progress");
  const text = box.querySelector("[data-progress-text]");
  async function poll() {
    try {
      const response = await fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" } });
      const job = await response.json();
      if (!response.ok) { text.textContent = job.message || "progress unavailable"; return; }
      bar.max = Math.max(job.total, 1);
      bar.value = job.done;
      text.textContent = `${job.done} of ${job.total} done${job.failed ? `, ${job.failed} failed` : ""} · ${job.status}`;
      if (!job.active) { if (box.dataset.startedActive === "1") window.location.reload(); return; }
      box.dataset.startedActive = "1";
    } catch (_) { /* a missed poll is retried */ }
    window.setTimeout(poll, 1000);
  }
  poll();
}

function previewFile(input) {
  const img = document.querySelector(`[data-preview-for="${input.id}"]`);
  const count = input.closest(".drop") && input.closest(".drop").querySelector("[data-file-count]");
  if (count) count.textContent = input.files.length ? `${input.files.length} file(s) chosen` : "no files chosen";
  if (!img) return;
  if (input.files.length && input.files[0].type.startsWith("image/")) {
    img.src = URL.createObjectURL(input.files[0]);
    img.hidden = false;
  } else { img.hidden = true; }
}

function enableDrop(zone) {
  const input = zone.querySelector("input[type=file]");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    input.files = e.dataTransfer.files;
    previewFile(input);
  });
  input.addEventListener("change", () => previewFile(input));
}

function enableReview(dialog) {
  const img = dialog.querySelector("[data-review-image]");
  let source = "";
  document.querySelectorAll("[data-review]").forEach((button) => {
    button.addEventListener("click", () => {
      source = button.dataset.review;
      img.src = source;
      img.alt = "The uploaded image, obscured";
      dialog.showModal();
    });
  });
  dialog.querySelector("[data-reveal]").addEventListener("click", () => {
    img.src = `${source}?reveal=true`;
    img.alt = "The uploaded image, revealed";
  });
  dialog.querySelector("[data-close]").addEventListener("click", () => { img.removeAttribute("src"); dialog.close(); });
}

document.addEventListener("DOMContentLoaded", () => {
  document.addEventListener("submit", submitAsync);
  document.querySelectorAll("[data-progress-url]").forEach(watchProgress);
  document.querySelectorAll("[data-drop-for]").forEach(enableDrop);
  document.querySelectorAll("[data-review-dialog]").forEach(enableReview);
  document.querySelectorAll("[data-overlay-toggle]").forEach((box) => {
    const img = box.closest("figure").querySelector("img");
    box.addEventListener("change", () => { img.src = box.checked ? img.dataset.overlay : img.dataset.plain; });
  });
  document.querySelectorAll("[data-new-key]").forEach((field) => field.select());
});
