// Keysmith's only script: progressive enhancement. Every page works without it.
// - a Copy button next to a key shown once (the key is also selectable by hand);
// - a "select all" checkbox in key tables.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    const status = button.parentElement.querySelector(".copy-status");
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        if (status) status.textContent = "Copied.";
      } catch {
        field.select();
        if (status) status.textContent = "Could not copy: the key is selected, press Ctrl+C.";
      }
    });
  }
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    const form = all.closest("form");
    const boxes = form.querySelectorAll('input[type="checkbox"][name="key_id"]');
    all.hidden = false;
    all.addEventListener("change", () => {
      for (const box of boxes) box.checked = all.checked;
    });
  }
});
