// Keysmith's only script: progressive enhancement. Every page works without it.
// - a Copy button next to a key shown once (the key is also selectable by hand);
// - a "select all" checkbox in key tables;
// - menus built on <details> close on Escape (focus back on their button), on a
//   click or a focus elsewhere, and when another one opens.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    const status = button.closest(".reveal")?.querySelector(".copy-status");
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

  const menus = [...document.querySelectorAll("details.menu")];
  const closeOthers = (keep) => {
    for (const menu of menus) if (menu !== keep) menu.open = false;
  };
  for (const menu of menus) {
    menu.addEventListener("toggle", () => {
      if (menu.open) closeOthers(menu);
    });
    menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
    menu.addEventListener("focusout", (event) => {
      if (menu.open && event.relatedTarget && !menu.contains(event.relatedTarget)) menu.open = false;
    });
  }
  document.addEventListener("click", (event) => {
    for (const menu of menus) if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
});
