// Zoom and pan of the image: the image is sized (CSS width/height) by the zoom and the stage is placed by the pan,
// so Annotorious keeps mapping pointer positions through its viewBox (no CSS transforms involved).

const MAX_ZOOM = 16;
const FIT_MARGIN = 0.97;
const WHEEL_SPEED = 0.0015;
const KEY_STEP = 1.25;

/** Zoom (wheel, zoomBy) and pan (space+drag, middle drag) of `image` inside `viewportEl`, placed by `stageEl`. */
export function createViewport(viewportEl, stageEl) {
  let image = null;
  let zoom = 1;
  let fitZoom = 1;
  let panX = 0;
  let panY = 0;
  let spaceHeld = false;
  let drag = null;

  const apply = () => {
    if (!image) return;
    image.style.width = `${image.naturalWidth * zoom}px`;
    image.style.height = `${image.naturalHeight * zoom}px`;
    stageEl.style.left = `${panX}px`;
    stageEl.style.top = `${panY}px`;
  };

  const fit = () => {
    if (!image) return;
    const { clientWidth: width, clientHeight: height } = viewportEl;
    fitZoom = Math.min(width / image.naturalWidth, height / image.naturalHeight) * FIT_MARGIN;
    zoom = fitZoom;
    panX = (width - image.naturalWidth * zoom) / 2;
    panY = (height - image.naturalHeight * zoom) / 2;
    apply();
  };

  const zoomAt = (factor, x, y) => {
    if (!image) return;
    const next = Math.min(MAX_ZOOM, Math.max(fitZoom / 2, zoom * factor));
    panX = x - ((x - panX) * next) / zoom;
    panY = y - ((y - panY) * next) / zoom;
    zoom = next;
    apply();
  };

  const startsPan = (event) => event.button === 1 || (event.button === 0 && spaceHeld);

  viewportEl.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const rect = viewportEl.getBoundingClientRect();
      zoomAt(Math.exp(-event.deltaY * WHEEL_SPEED), event.clientX - rect.left, event.clientY - rect.top);
    },
    { passive: false },
  );
  // Capture phase: a pan gesture never reaches Annotorious (it would draw or move a box).
  viewportEl.addEventListener(
    "pointerdown",
    (event) => {
      if (!startsPan(event)) return;
      event.preventDefault();
      event.stopPropagation();
      drag = { pointerId: event.pointerId, x: event.clientX, y: event.clientY, panX, panY };
      viewportEl.setPointerCapture(event.pointerId);
      viewportEl.classList.add("panning");
    },
    true,
  );
  viewportEl.addEventListener(
    "pointermove",
    (event) => {
      if (!drag || event.pointerId !== drag.pointerId) return;
      event.stopPropagation();
      panX = drag.panX + event.clientX - drag.x;
      panY = drag.panY + event.clientY - drag.y;
      apply();
    },
    true,
  );
  const endPan = (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    event.stopPropagation();
    drag = null;
    viewportEl.classList.remove("panning");
  };
  viewportEl.addEventListener("pointerup", endPan, true);
  viewportEl.addEventListener("pointercancel", endPan, true);
  // No autoscroll or paste on a middle press.
  viewportEl.addEventListener("mousedown", (event) => event.button === 1 && event.preventDefault());
  viewportEl.addEventListener("auxclick", (event) => event.button === 1 && event.preventDefault());
  window.addEventListener("resize", fit);

  return {
    /** Shows `img` (loaded) fitted to the viewport. */
    show(img) {
      image = img;
      fit();
    },
    fit,
    /** Zooms by `factor` about the viewport's centre. */
    zoomBy(factor) {
      zoomAt(factor, viewportEl.clientWidth / 2, viewportEl.clientHeight / 2);
    },
    zoomIn() {
      this.zoomBy(KEY_STEP);
    },
    zoomOut() {
      this.zoomBy(1 / KEY_STEP);
    },
    /** Space held: a left drag pans instead of drawing. */
    setSpaceHeld(held) {
      spaceHeld = held;
      viewportEl.classList.toggle("pan-ready", held);
    },
    zoom: () => zoom,
  };
}
