// Credentials for the API, by the `auth.kind` of config.json: none (a name), token (#token=… link) or cognito (PKCE).

const WORKER_KEY = "boxloop.worker";
const TOKEN_KEY = "boxloop.token";
const COGNITO_TOKENS_KEY = "boxloop.cognito.tokens";
const COGNITO_PKCE_KEY = "boxloop.cognito.pkce";
const EXPIRY_MARGIN_MS = 60_000;
const MAX_NAME_LENGTH = 64;

export class AuthError extends Error {}

/** Base64url without padding, as PKCE and JWTs use it. */
export function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A random PKCE code verifier (43 characters from 32 random bytes). */
export function randomVerifier() {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

/** The S256 code challenge of a verifier: base64url(SHA-256(verifier)), with WebCrypto. */
export async function codeChallenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The claims of a JWT (not verified: the API verifies it; the page only reads its name and expiry). */
export function jwtClaims(token) {
  const payload = token.split(".")[1] || "";
  const padded = payload.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((payload.length + 3) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/**
 * Sets up authentication for `authConfig` ({kind, cognito_domain, client_id, redirect_uri}).
 * `askName(current)` asks the labeller's name (kinds none and token). Returns
 * {kind, worker(), headers(), changeWorker(), onUnauthorized()}; for cognito it may navigate to the login page instead.
 */
export async function createAuth(authConfig, askName) {
  const kind = authConfig?.kind;
  if (kind === "none") return namedAuth(askName, () => ({}));
  if (kind === "token") {
    const token = takeTokenFromHash();
    return namedAuth(askName, () => ({ Authorization: `Bearer ${token}` }));
  }
  if (kind === "cognito") return cognitoAuth(authConfig);
  throw new AuthError(`config.json: unknown auth kind ${JSON.stringify(kind)} (expected none, token or cognito)`);
}

async function namedAuth(askName, credentialHeaders) {
  let name = localStorage.getItem(WORKER_KEY);
  const ask = async () => {
    const answer = await askName(name || "");
    if (answer !== null) {
      name = answer.trim().slice(0, MAX_NAME_LENGTH);
      localStorage.setItem(WORKER_KEY, name);
    }
  };
  while (!name) await ask();
  return {
    kind: "named",
    worker: () => name,
    headers: async () => ({ ...credentialHeaders(), "X-Boxloop-Worker": name }),
    changeWorker: ask,
    onUnauthorized: async () => {
      throw new AuthError("The server refused this page's token: open the link that `boxloop run` printed.");
    },
  };
}

function takeTokenFromHash() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new AuthError("This page needs its token: open the link with #token=… that `boxloop run` printed.");
  return token;
}

function cognitoEndpoint(domain, path) {
  const base = /^https?:\/\//.test(domain) ? domain : `https://${domain}`;
  return `${base.replace(/\/+$/, "")}${path}`;
}

async function cognitoAuth({ cognito_domain: domain, client_id: clientId, redirect_uri: redirectUri }) {
  if (!domain || !clientId || !redirectUri) {
    throw new AuthError("config.json: auth kind cognito needs cognito_domain, client_id and redirect_uri");
  }
  const tokenUrl = cognitoEndpoint(domain, "/oauth2/token");

  const requestTokens = async (form) => {
    const response = await fetch(tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: clientId, ...form }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.id_token) {
      throw new AuthError(`Sign-in failed: ${body.error_description || body.error || `HTTP ${response.status}`}`);
    }
    const tokens = {
      id_token: body.id_token,
      access_token: body.access_token,
      refresh_token: body.refresh_token || form.refresh_token || null,
      expires_at: jwtClaims(body.id_token).exp * 1000,
    };
    sessionStorage.setItem(COGNITO_TOKENS_KEY, JSON.stringify(tokens));
    return tokens;
  };

  const login = async () => {
    const verifier = randomVerifier();
    const state = randomVerifier();
    sessionStorage.setItem(COGNITO_PKCE_KEY, JSON.stringify({ verifier, state }));
    sessionStorage.removeItem(COGNITO_TOKENS_KEY);
    const query = new URLSearchParams({
      response_type: "code",
      client_id: clientId,
      redirect_uri: redirectUri,
      scope: "openid",
      state,
      code_challenge_method: "S256",
      code_challenge: await codeChallenge(verifier),
    });
    location.assign(`${cognitoEndpoint(domain, "/oauth2/authorize")}?${query}`);
    return new Promise(() => {}); // the page is leaving
  };

  const completeRedirect = async () => {
    const params = new URLSearchParams(location.search);
    if (params.has("error")) {
      throw new AuthError(`Sign-in failed: ${params.get("error_description") || params.get("error")}`);
    }
    const code = params.get("code");
    if (!code) return null;
    const pending = JSON.parse(sessionStorage.getItem(COGNITO_PKCE_KEY) || "null");
    sessionStorage.removeItem(COGNITO_PKCE_KEY);
    history.replaceState(null, "", location.pathname);
    if (!pending || pending.state !== params.get("state")) {
      throw new AuthError("Sign-in failed: the login answer does not match this browser's request; reload to retry.");
    }
    return requestTokens({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri,
      code_verifier: pending.verifier,
    });
  };

  let tokens = (await completeRedirect()) || JSON.parse(sessionStorage.getItem(COGNITO_TOKENS_KEY) || "null");
  if (!tokens) await login();

  const freshTokens = async () => {
    if (tokens.expires_at - EXPIRY_MARGIN_MS > Date.now()) return tokens;
    if (tokens.refresh_token) {
      try {
        tokens = await requestTokens({ grant_type: "refresh_token", refresh_token: tokens.refresh_token });
        return tokens;
      } catch (error) {
        console.warn("token refresh failed; signing in again", error);
      }
    }
    return login();
  };

  return {
    kind: "cognito",
    worker: () => {
      const claims = jwtClaims(tokens.id_token);
      return claims["cognito:username"] || claims.email || claims.sub;
    },
    headers: async () => ({ Authorization: `Bearer ${(await freshTokens()).id_token}` }),
    changeWorker: null,
    onUnauthorized: login,
  };
}
