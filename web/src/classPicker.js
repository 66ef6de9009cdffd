// The batch's classes: a filterable list (up to 50 classes) with number-key shortcuts 1–9, 0 for the first ten.

import { classColour } from "./boxEditor.js";

const SHORTCUT_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];

/** The list in `listEl` filtered by `filterEl`; `onPick(classId)` is called when a class is chosen. */
export function createClassPicker(listEl, filterEl, onPick) {
  let classes = [];
  let highlighted = null;

  const visible = () => {
    const needle = filterEl.value.trim().toLowerCase();
    return classes.filter((c) => !needle || c.name.toLowerCase().includes(needle));
  };

  const render = () => {
    listEl.replaceChildren(
      ...visible().map((c) => {
        const index = classes.indexOf(c);
        const item = document.createElement("li");
        item.dataset.testid = "class";
        item.dataset.classId = String(c.id);
        item.classList.toggle("current", c.id === highlighted);
        item.title = index < SHORTCUT_KEYS.length ? `Key ${SHORTCUT_KEYS[index]}` : "Pick with a click or the filter";
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = classColour(index);
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = c.name;
        const key = document.createElement("kbd");
        key.textContent = index < SHORTCUT_KEYS.length ? SHORTCUT_KEYS[index] : "";
        item.append(swatch, name, key);
        item.addEventListener("click", () => onPick(c.id));
        return item;
      }),
    );
  };

  filterEl.addEventListener("input", render);
  filterEl.addEventListener("keydown", (event) => {
    event.stopPropagation();
    if (event.key === "Enter") {
      event.preventDefault();
      const [first] = visible();
      if (first) onPick(first.id);
      filterEl.value = "";
      render();
      filterEl.blur();
    } else if (event.key === "Escape") {
      filterEl.value = "";
      render();
      filterEl.blur();
    }
  });

  return {
    /** Shows `batchClasses` ([{id, name}]) unless they are already shown. */
    setClasses(batchClasses) {
      if (JSON.stringify(batchClasses) === JSON.stringify(classes)) return;
      classes = batchClasses;
      if (!classes.some((c) => c.id === highlighted)) highlighted = classes[0]?.id ?? null;
      render();
    },
    classes: () => classes,
    /** The class id of shortcut `key` ("1"–"9", "0"), or null. */
    classForKey(key) {
      const index = SHORTCUT_KEYS.indexOf(key);
      return index >= 0 && index < classes.length ? classes[index].id : null;
    },
    /** Marks `classId` as the current one in the list. */
    highlight(classId) {
      highlighted = classId;
      for (const item of listEl.children) item.classList.toggle("current", item.dataset.classId === String(classId));
    },
    focusFilter() {
      filterEl.focus();
      filterEl.select();
    },
  };
}
