// The boxes of one task on top of its image, edited with Annotorious: draw by dragging, select by clicking, move and
// resize by the handles, delete, change class, undo. Annotorious works in the displayed image's natural pixels; the
// API speaks original pixels (TaskView width/height), so every box is scaled on the way in and out.
import { createBody, createImageAnnotator, ShapeType, UserSelectAction } from "@annotorious/annotorious";

const PALETTE = [
  "#ff6b3d", "#2fb4ff", "#ffd23f", "#3ddc97", "#c17dff", "#ff4f8b",
  "#5ce1e6", "#b4e33d", "#ff9f1c", "#7b8cff", "#f15bb5", "#00c2a8",
];
const UNKNOWN_CLASS_COLOUR = "#ff3b30";
const CLASS_PURPOSE = "classifying";
const TAG_INSIDE_BELOW = 0.04; // a box this close to the image's top edge shows its class tag inside

/** The display colour of the class at position `index` of the batch's class list. */
export const classColour = (index) => PALETTE[index % PALETTE.length];

const round2 = (value) => Math.round(value * 100) / 100;

let nextId = 0;
const newId = () => `box-${(nextId += 1)}`;

const classBody = (annotationId, classId) =>
  createBody(annotationId, { purpose: CLASS_PURPOSE, value: String(classId) });

const classOf = (annotation) => {
  const body = annotation.bodies.find((b) => b.purpose === CLASS_PURPOSE);
  return body ? Number(body.value) : null;
};

const rectangle = (x, y, w, h) => ({
  type: ShapeType.RECTANGLE,
  geometry: { x, y, w, h, rot: 0, bounds: { minX: x, minY: y, maxX: x + w, maxY: y + h } },
});

/**
 * Makes the loaded `img` editable for `task` (a TaskView). `currentClass()` is the class a newly drawn box gets;
 * `onChange()` is called after every change of the boxes or the selection.
 */
export function createBoxEditor({ img, task, classes, currentClass, onChange }) {
  const scaleX = task.width / img.naturalWidth;
  const scaleY = task.height / img.naturalHeight;
  const classIndex = new Map(classes.map((c, index) => [c.id, index]));
  const colourOf = (classId) => (classIndex.has(classId) ? classColour(classIndex.get(classId)) : UNKNOWN_CLASS_COLOUR);

  const anno = createImageAnnotator(img, {
    drawingEnabled: true,
    drawingMode: "drag",
    userSelectAction: UserSelectAction.EDIT,
    theme: "light",
    style: (annotation, state) => {
      const colour = colourOf(classOf(annotation));
      return {
        stroke: colour,
        strokeWidth: state?.selected ? 3 : 2,
        fill: colour,
        fillOpacity: state?.selected ? 0.2 : state?.hovered ? 0.12 : 0.04,
      };
    },
  });
  const container = anno.element;
  const svg = container.querySelector("svg");
  const overlay = document.createElement("div");
  overlay.className = "box-overlay";
  container.appendChild(overlay);

  const annotationOf = (box) => {
    const id = newId();
    return {
      id,
      bodies: [classBody(id, box.class_id)],
      target: {
        annotation: id,
        selector: rectangle(box.left / scaleX, box.top / scaleY, box.width / scaleX, box.height / scaleY),
      },
    };
  };

  /** A box in original pixels, clipped to the image. */
  const boxOf = (annotation) => {
    const { x, y, w, h } = annotation.target.selector.geometry;
    const left = Math.min(Math.max(x * scaleX, 0), task.width);
    const top = Math.min(Math.max(y * scaleY, 0), task.height);
    const right = Math.min(Math.max((x + w) * scaleX, 0), task.width);
    const bottom = Math.min(Math.max((y + h) * scaleY, 0), task.height);
    return {
      class_id: classOf(annotation),
      left: round2(left),
      top: round2(top),
      width: round2(right - left),
      height: round2(bottom - top),
    };
  };

  const selectedIds = () => new Set(anno.getSelected().map((a) => a.id));

  const renderOverlay = () => {
    const selected = selectedIds();
    const { naturalWidth: width, naturalHeight: height } = img;
    overlay.replaceChildren(
      ...anno.getAnnotations().map((annotation) => {
        const { x, y, w, h } = annotation.target.selector.geometry;
        const classId = classOf(annotation);
        const index = classIndex.get(classId);
        const frame = document.createElement("div");
        frame.className = "box-frame";
        frame.dataset.testid = "box";
        frame.dataset.boxId = annotation.id;
        frame.dataset.classId = String(classId);
        frame.dataset.selected = String(selected.has(annotation.id));
        frame.classList.toggle("tag-inside", y < height * TAG_INSIDE_BELOW);
        Object.assign(frame.style, {
          left: `${(x / width) * 100}%`,
          top: `${(y / height) * 100}%`,
          width: `${(w / width) * 100}%`,
          height: `${(h / height) * 100}%`,
        });
        const tag = document.createElement("span");
        tag.className = "box-tag";
        tag.style.background = colourOf(classId);
        tag.textContent = index === undefined ? `unknown class ${classId}` : classes[index].name;
        frame.appendChild(tag);
        return frame;
      }),
    );
  };

  const changed = () => {
    renderOverlay();
    onChange();
  };

  anno.setAnnotations(task.boxes.map(annotationOf));
  anno.state.store.observe(changed);
  anno.state.selection.subscribe(changed);
  // A drawn box gets the current class and is let go, so the next drag draws the next box. This runs as a microtask
  // right after the drawing's pointerup, before anything else can read the boxes, and lands in the same undo step.
  const adoptDrawn = (id) => {
    const annotation = anno.state.store.getAnnotation(id);
    if (!annotation || classOf(annotation) !== null) return;
    anno.updateAnnotation({ ...annotation, bodies: [classBody(id, currentClass())] });
    anno.cancelSelected();
  };
  anno.state.store.observe(
    ({ changes }) => {
      for (const annotation of changes.created || []) queueMicrotask(() => adoptDrawn(annotation.id));
    },
    { origin: "LOCAL" },
  );
  // Annotorious draws only while nothing is selected: a drag that starts off the selected box lets it go and starts
  // drawing right there (the press is replayed once the drawing tool is mounted, after Svelte's update).
  container.addEventListener(
    "pointerdown",
    (event) => {
      if (event.button !== 0 || !event.isTrusted || anno.getSelected().length === 0) return;
      if (event.target.closest(".a9s-annotation.selected")) return;
      anno.cancelSelected();
      const replay = new PointerEvent("pointerdown", {
        bubbles: true,
        cancelable: true,
        clientX: event.clientX,
        clientY: event.clientY,
        screenX: event.screenX,
        screenY: event.screenY,
        button: 0,
        buttons: 1,
        pointerId: event.pointerId,
        pointerType: event.pointerType,
        isPrimary: event.isPrimary,
      });
      queueMicrotask(() => queueMicrotask(() => svg.dispatchEvent(replay)));
    },
    true,
  );

  return {
    /** The boxes in original pixels, clipped to the image, in drawing order. */
    boxes: () => anno.getAnnotations().map(boxOf),
    /** The boxes with their ids, for the box list. */
    entries: () => {
      const selected = selectedIds();
      return anno.getAnnotations().map((a) => ({ id: a.id, selected: selected.has(a.id), box: boxOf(a) }));
    },
    /** The class of the (first) selected box, or null when none is selected. */
    selectedClass: () => {
      const [first] = anno.getSelected();
      return first ? classOf(first) : null;
    },
    /** Sets the class of the selected boxes; false when none is selected. */
    setSelectedClass(classId) {
      const selected = anno.getSelected();
      for (const annotation of selected) {
        anno.updateAnnotation({ ...annotation, bodies: [classBody(annotation.id, classId)] });
      }
      return selected.length > 0;
    },
    /** Deletes the selected boxes; false when none is selected. */
    deleteSelected() {
      const selected = anno.getSelected();
      anno.cancelSelected();
      for (const annotation of selected) anno.removeAnnotation(annotation.id);
      return selected.length > 0;
    },
    select: (id) => anno.setSelected(id, true),
    deselect: () => anno.cancelSelected(),
    undo: () => anno.undo(),
    destroy() {
      anno.destroy();
      overlay.remove();
    },
  };
}
