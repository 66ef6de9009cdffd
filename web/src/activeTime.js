// Active time on a task: seconds while the tab is visible AND there was input (mouse, key, wheel) in the last 30 s.

export const IDLE_AFTER_MS = 30_000;
const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel"];

/** Starts measuring; `onTick(seconds)` is called about once a second for the display. */
export function createActiveTimer(onTick) {
  let activeMs = 0;
  let lastTick = Date.now();
  let lastInput = -Infinity;
  let visible = document.visibilityState === "visible";

  const tick = () => {
    const now = Date.now();
    if (visible) {
      const start = Math.max(lastTick, lastInput);
      const end = Math.min(now, lastInput + IDLE_AFTER_MS);
      if (end > start) activeMs += end - start;
    }
    lastTick = now;
  };
  const onInput = () => {
    tick();
    lastInput = Date.now();
  };
  const onVisibility = () => {
    tick();
    visible = document.visibilityState === "visible";
  };

  for (const name of INPUT_EVENTS) window.addEventListener(name, onInput, { capture: true, passive: true });
  document.addEventListener("visibilitychange", onVisibility);
  setInterval(() => {
    tick();
    onTick(activeMs / 1000);
  }, 1000);

  return {
    /** Starts a new task's count from zero. */
    reset() {
      tick();
      activeMs = 0;
      onTick(0);
    },
    /** Active seconds since the last reset. */
    seconds() {
      tick();
      return activeMs / 1000;
    },
  };
}
