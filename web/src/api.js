// The labelling API (docs: the HTTP contract of issue 13): JSON over fetch, errors as ApiError with the server's reasons.

export class ApiError extends Error {
  constructor(status, body, path) {
    super(body?.error || `HTTP ${status} from ${path}`);
    this.status = status;
    this.reasons = Array.isArray(body?.reasons) ? body.reasons : [];
  }
}

/** A client for the API at `apiBase` ("/api" or an absolute URL), sending `auth.headers()` with every call. */
export function createApi(apiBase, auth) {
  const base = apiBase.replace(/\/+$/, "");

  const request = async (method, path, body) => {
    const headers = { ...(await auth.headers()) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (response.status === 401) await auth.onUnauthorized();
    if (!response.ok) throw new ApiError(response.status, data, path);
    if (data === null) throw new ApiError(response.status, { error: `${path} answered without JSON` }, path);
    return data;
  };

  return {
    batch: () => request("GET", "/batch"),
    claim: () => request("POST", "/claims"),
    release: (taskId) => request("DELETE", `/claims/${encodeURIComponent(taskId)}`),
    task: (taskId) => request("GET", `/tasks/${encodeURIComponent(taskId)}`),
    answer: (taskId, answer) => request("POST", `/tasks/${encodeURIComponent(taskId)}/answer`, answer),
  };
}
