// One modal <dialog> for confirmations and short text answers: Enter confirms, Escape cancels.

const byId = (id) => document.getElementById(id);

/**
 * Shows the dialog; resolves with true (confirm) / false (cancel), or with the typed text / null when `input` is
 * given ({placeholder, value, required, maxLength}).
 */
export function openDialog({ title, text, confirmLabel = "OK", input = null, cancellable = true }) {
  const dialog = byId("dialog");
  const field = byId("dialog-input");
  const error = byId("dialog-error");
  const cancel = byId("dialog-cancel");
  byId("dialog-title").textContent = title;
  byId("dialog-text").textContent = text;
  byId("dialog-confirm").firstChild.textContent = `${confirmLabel} `;
  cancel.hidden = !cancellable;
  field.hidden = input === null;
  field.value = input?.value || "";
  field.placeholder = input?.placeholder || "";
  field.maxLength = input?.maxLength || 500;
  error.hidden = true;

  return new Promise((resolve) => {
    const finish = (confirmed) => {
      if (confirmed && input?.required && !field.value.trim()) {
        error.textContent = "This can't be empty.";
        error.hidden = false;
        field.focus();
        return;
      }
      dialog.removeEventListener("keydown", onKey);
      dialog.removeEventListener("cancel", onCancel);
      cancel.removeEventListener("click", onCancelClick);
      byId("dialog-form").removeEventListener("submit", onSubmit);
      dialog.close();
      if (input === null) resolve(confirmed);
      else resolve(confirmed ? field.value.trim() : null);
    };
    const onKey = (event) => {
      event.stopPropagation();
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        finish(true);
      }
    };
    const onCancel = (event) => {
      event.preventDefault();
      if (cancellable) finish(false);
    };
    const onCancelClick = () => finish(false);
    const onSubmit = (event) => {
      event.preventDefault();
      finish(true);
    };
    dialog.addEventListener("keydown", onKey);
    dialog.addEventListener("cancel", onCancel);
    cancel.addEventListener("click", onCancelClick);
    byId("dialog-form").addEventListener("submit", onSubmit);
    dialog.showModal();
    (input === null ? byId("dialog-confirm") : field).focus();
  });
}
