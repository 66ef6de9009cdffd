// The labelling page: claims a task, shows its image with the model's boxes, and submits the labeller's answer.
import "@annotorious/annotorious/annotorious.css";
import "./app.css";
import { createActiveTimer } from "./activeTime.js";
import { ApiError, createApi } from "./api.js";
import { createAuth } from "./auth.js";
import { createBoxEditor } from "./boxEditor.js";
import { createClassPicker } from "./classPicker.js";
import { openDialog } from "./dialogs.js";
import { createViewport } from "./viewport.js";

const POLL_MS = 5_000;
const BATCH_REFRESH_MS = 30_000;
const SUCCESS_SHOWN_MS = 2_000;
const REPEATLESS_KEYS = new Set(["Enter", "n", "e", "x"]);

const byId = (id) => document.getElementById(id);
const round1 = (value) => Math.round(value * 10) / 10;

const state = {
  api: null,
  task: null,
  editor: null,
  openedAt: null,
  currentClass: null,
  busy: false,
  pollTimer: null,
  messageTimer: null,
};

const viewport = createViewport(byId("viewport"), byId("stage"));
const picker = createClassPicker(byId("class-list"), byId("class-filter"), pickClass);
const timer = createActiveTimer((seconds) => {
  const whole = Math.floor(seconds);
  const element = byId("active-seconds");
  element.textContent = `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
  element.dataset.seconds = String(round1(seconds));
});

function showPlaceholder(text, isError = false) {
  const placeholder = byId("placeholder");
  placeholder.textContent = text;
  placeholder.classList.toggle("error", isError);
  placeholder.hidden = false;
}

function showMessage(text, kind = "info") {
  const message = byId("message");
  message.textContent = text;
  message.className = `message ${kind}`;
  message.hidden = false;
  clearTimeout(state.messageTimer);
  if (kind === "success") state.messageTimer = setTimeout(() => (message.hidden = true), SUCCESS_SHOWN_MS);
}

function showErrors(title, reasons) {
  byId("errors-title").textContent = title;
  byId("errors-list").replaceChildren(
    ...reasons.map((reason) => {
      const item = document.createElement("li");
      item.dataset.testid = "error-reason";
      item.textContent = reason;
      return item;
    }),
  );
  byId("errors").hidden = false;
}

function clearNotices() {
  byId("errors").hidden = true;
  byId("message").hidden = true;
}

function renderBatch(batch) {
  const { total, submitted } = batch.counts;
  byId("progress-text").textContent = `${submitted} / ${total} submitted`;
  byId("progress").dataset.submitted = String(submitted);
  byId("progress").dataset.total = String(total);
  byId("progress-bar").style.width = `${total ? (100 * submitted) / total : 0}%`;
  const { hours_used: used, hours_total: budget } = batch.budget;
  byId("budget-text").textContent = `${used.toFixed(2)} h of ${budget} h`;
  byId("budget").dataset.hoursUsed = String(used);
  byId("instructions").textContent = batch.instructions || "Draw a box around every object of the listed classes.";
  picker.setClasses(batch.classes);
  if (state.currentClass === null || !batch.classes.some((c) => c.id === state.currentClass)) {
    state.currentClass = batch.classes[0]?.id ?? null;
  }
  renderBoxes();
}

function renderBoxes() {
  const entries = state.editor ? state.editor.entries() : [];
  const names = new Map(picker.classes().map((c) => [c.id, c.name]));
  byId("box-count").textContent = String(entries.length);
  byId("box-list").replaceChildren(
    ...entries.map(({ id, selected, box }, position) => {
      const item = document.createElement("li");
      item.classList.toggle("selected", selected);
      item.textContent = `${position + 1}. ${names.get(box.class_id) ?? `class ${box.class_id}`}`;
      const size = document.createElement("span");
      size.className = "size";
      size.textContent = `${Math.round(box.width)}×${Math.round(box.height)}`;
      item.appendChild(size);
      item.addEventListener("click", () => state.editor?.select(id));
      return item;
    }),
  );
  picker.highlight(state.editor?.selectedClass() ?? state.currentClass);
}

function closeTask() {
  state.editor?.destroy();
  state.editor = null;
  state.task = null;
  byId("stage").replaceChildren();
  byId("task-info").textContent = "";
  renderBoxes();
}

function loadImage(url) {
  const img = new Image();
  img.id = "image";
  img.dataset.testid = "image";
  img.alt = "Image to label";
  img.draggable = false;
  byId("stage").replaceChildren(img);
  return new Promise((resolve, reject) => {
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("The image did not load (its link may have expired): press N to reload it."));
    img.src = url;
  });
}

async function openTask(task) {
  if (state.task?.task_id === task.task_id) {
    showMessage("No other task is open right now, so this one came back: answer it, or mark it as not labellable (X).");
    return;
  }
  closeTask();
  showPlaceholder("Loading the image…");
  const img = await loadImage(task.image_url);
  byId("placeholder").hidden = true;
  state.task = task;
  state.openedAt = new Date();
  timer.reset();
  state.editor = createBoxEditor({
    img,
    task,
    classes: picker.classes(),
    currentClass: () => state.currentClass,
    onChange: renderBoxes,
  });
  viewport.show(img);
  const leaseEnd = new Date(task.lease_expires_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  byId("task-info").textContent = `${task.width}×${task.height} px · yours until ${leaseEnd}`;
  renderBoxes();
}

function schedulePoll() {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(() => exclusive(loadNext), POLL_MS);
}

async function refreshBatch() {
  const batch = await state.api.batch();
  renderBatch(batch);
  return batch;
}

async function loadNext() {
  clearTimeout(state.pollTimer);
  const batch = await refreshBatch();
  if (!batch.batch_open) {
    closeTask();
    showPlaceholder("Waiting for the next batch… this page checks every few seconds.");
    schedulePoll();
    return;
  }
  const claim = await state.api.claim();
  if (claim === null) {
    closeTask();
    showPlaceholder("No open tasks right now: the others are being labelled or done. Checking again shortly.");
    schedulePoll();
    return;
  }
  await openTask(claim.task);
}

async function submit(outcome, reason = null) {
  if (!state.task) return;
  const answer = {
    outcome,
    boxes: outcome === "boxes" ? state.editor.boxes() : [],
    reason,
    active_seconds: round1(timer.seconds()),
    opened_at: state.openedAt.toISOString(),
    submitted_at: new Date().toISOString(),
  };
  try {
    await state.api.answer(state.task.task_id, answer);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 422 || error.status === 409)) {
      const title = error.status === 422 ? "The answer was not accepted — fix it and submit again" : "Not stored";
      const reasons = error.reasons.length ? error.reasons : [error.message];
      showErrors(title, error.status === 409 ? [...reasons, "Press N for the next task."] : reasons);
      return;
    }
    throw error;
  }
  clearNotices();
  showMessage("Submitted.", "success");
  await loadNext();
}

/** Enter: submits the boxes; with none drawn it asks whether the image has no objects. */
async function submitBoxes() {
  if (!state.task) return;
  if (state.editor.boxes().length === 0) await noObjects();
  else await exclusive(() => submit("boxes"));
}

/** N: gives the task back (it stays in the batch for someone else) and claims another. */
async function skip() {
  clearNotices();
  if (state.task) {
    // a batch that closed (404) or a lease already gone (409) leaves nothing to give back
    await state.api.release(state.task.task_id).catch((error) => {
      if (!(error instanceof ApiError && (error.status === 404 || error.status === 409))) throw error;
    });
  }
  await loadNext();
}

async function noObjects() {
  if (!state.task) return;
  const count = state.editor.boxes().length;
  const confirmed = await openDialog({
    title: "No objects in this image?",
    text: count
      ? `The ${count} box${count === 1 ? "" : "es"} on it will be discarded.`
      : "The image is submitted as showing none of the classes.",
    confirmLabel: "Submit",
  });
  if (confirmed) await exclusive(() => submit("no_objects"));
}

async function cannotLabel() {
  if (!state.task) return;
  const reason = await openDialog({
    title: "Cannot label this image",
    text: "Say why. The image leaves the pool with this reason, and the run's report lists it.",
    confirmLabel: "Submit",
    input: { placeholder: "e.g. too blurry to tell the objects apart", required: true, maxLength: 500 },
  });
  if (reason !== null) await exclusive(() => submit("cannot_label", reason));
}

function pickClass(classId) {
  if (!state.editor?.setSelectedClass(classId)) state.currentClass = classId;
  renderBoxes();
}

function deleteSelected() {
  state.editor?.deleteSelected();
}

/** Runs an action that talks to the API, one at a time; errors are shown, never thrown away. */
async function exclusive(action) {
  if (state.busy) return;
  state.busy = true;
  try {
    await action();
  } catch (error) {
    console.error(error);
    showMessage(error.message, "error");
  } finally {
    state.busy = false;
  }
}

const KEY_ACTIONS = {
  Enter: submitBoxes,
  n: () => exclusive(skip),
  e: noObjects,
  x: cannotLabel,
  Delete: deleteSelected,
  Backspace: deleteSelected,
  Escape: () => state.editor?.deselect(),
  "+": () => viewport.zoomIn(),
  "=": () => viewport.zoomIn(),
  "-": () => viewport.zoomOut(),
  f: () => viewport.fit(),
  "/": () => picker.focusFilter(),
};

function onKeyDown(event) {
  if (byId("dialog").open || event.target.closest?.("input, textarea")) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return; // Ctrl+Z / Ctrl+Y: Annotorious's undo stack
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (key === " ") {
    event.preventDefault();
    viewport.setSpaceHeld(true);
    return;
  }
  const classId = picker.classForKey(key);
  const action = classId === null ? KEY_ACTIONS[key] : () => pickClass(classId);
  if (!action) return;
  event.preventDefault();
  if (event.repeat && REPEATLESS_KEYS.has(key)) return;
  action();
}

function bindControls() {
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", (event) => event.key === " " && viewport.setSpaceHeld(false));
  window.addEventListener("blur", () => viewport.setSpaceHeld(false));
  const buttons = {
    submit: KEY_ACTIONS.Enter,
    "no-objects": noObjects,
    "cannot-label": cannotLabel,
    next: KEY_ACTIONS.n,
    "zoom-in": KEY_ACTIONS["+"],
    "zoom-out": KEY_ACTIONS["-"],
    "zoom-fit": KEY_ACTIONS.f,
    undo: () => state.editor?.undo(),
  };
  for (const [id, action] of Object.entries(buttons)) {
    byId(id).addEventListener("click", (event) => {
      event.currentTarget.blur(); // keys stay with the page, not with the button
      action();
    });
  }
}

async function fetchConfig() {
  const response = await fetch("./config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json is missing (HTTP ${response.status}): the server writes it.`);
  return response.json();
}

const askName = (current) =>
  openDialog({
    title: "Who is labelling?",
    text: "Your name goes with your answers (it is kept in this browser).",
    confirmLabel: "Start",
    input: { placeholder: "Your name", value: current, required: true, maxLength: 64 },
    cancellable: Boolean(current),
  });

async function boot() {
  const config = await fetchConfig();
  const auth = await createAuth(config.auth, askName);
  state.api = createApi(config.api_base, auth);
  const worker = byId("worker");
  worker.textContent = auth.worker();
  worker.disabled = !auth.changeWorker;
  worker.addEventListener("click", async () => {
    await auth.changeWorker();
    worker.textContent = auth.worker();
  });
  bindControls();
  window.boxloop = {
    currentBoxes: () => (state.editor ? state.editor.boxes() : []),
    taskId: () => state.task?.task_id ?? null,
    activeSeconds: () => timer.seconds(),
  };
  setInterval(() => state.task && refreshBatch().catch((error) => console.warn(error)), BATCH_REFRESH_MS);
  await exclusive(loadNext);
}

boot().catch((error) => {
  console.error(error);
  showPlaceholder(error.message, true);
});
