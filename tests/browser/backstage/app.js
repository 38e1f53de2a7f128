// A Backstage app's Bitbucket sign-in, as the published @backstage/core-app-api does it.
//
// The page is served from its own origin; `?backend=<app URL>` names the app under test,
// whose auth routes the discovery API finds at `<app URL>/api/auth`; `&redirect` switches on
// Backstage's redirect flow, and `&env=<name>` sets `auth.environment` (default
// development). Playwright drives it through `window.backstage` and the "Sign in with
// Bitbucket" button.
//
// Signing in: a Backstage app's SignInPage calls `getBackstageIdentity({instantPopup: true})`
// when the person presses its sign-in button, which opens the popup at once (a click, so the
// browser lets the page open it). Without `instantPopup`, the OAuthRequestManager would queue
// the request for the "login required" dialog and wait for its `trigger()`; the page lists
// such pending requests in `backstage.pendingRequests()` so the tests can see that none is
// left waiting.
//
// Every `window.backstage` function answers in the shape `outcome` gives.
import {
  BitbucketAuth,
  ConfigReader,
  OAuthRequestManager,
  UrlPatternDiscovery,
  openLoginPopup,
} from "@backstage/core-app-api";

const params = new URLSearchParams(window.location.search);
const backend = params.get("backend");
const environment = params.get("env") ?? "development";
const configApi = new ConfigReader({
  app: { baseUrl: window.location.origin },
  backend: { baseUrl: backend },
  auth: { environment },
  // `&redirect`: sign in by leaving for Bitbucket and coming back instead of a popup.
  enableExperimentalRedirectFlow: params.has("redirect"),
});
const discoveryApi = UrlPatternDiscovery.compile(`${backend}/api/{{ pluginId }}`);
const oauthRequestApi = new OAuthRequestManager();
const bitbucketAuth = BitbucketAuth.create({
  configApi,
  discoveryApi,
  oauthRequestApi,
  environment,
});

let pending = [];
oauthRequestApi.authRequest$().subscribe((requests) => {
  pending = requests;
});

// Promise results cross into Playwright as plain data: `{value}` or `{error: {name, message}}`.
async function outcome(call) {
  try {
    return { value: (await call()) ?? null };
  } catch (error) {
    return { error: { name: error.name, message: error.message } };
  }
}

// What the sign-in button (or `openLoginPopup`) started: settles when the popup has answered
// or was closed.
let started = null;

window.backstage = {
  started: () => started,
  // Backstage's own popup helper on any URL: what `BitbucketAuth` does after its refresh.
  openLoginPopup: (url) => {
    started = outcome(() => openLoginPopup({ url, name: "Bitbucket Login" }));
  },
  identity: () => outcome(() => bitbucketAuth.getBackstageIdentity({ optional: true })),
  profile: () => outcome(() => bitbucketAuth.getProfile({ optional: true })),
  signOut: () => outcome(() => bitbucketAuth.signOut()),
  pendingRequests: () => ({ value: pending.map((request) => request.provider.id) }),
};

const button = document.getElementById("sign-in");
button.addEventListener("click", () => {
  started = outcome(() => bitbucketAuth.getBackstageIdentity({ instantPopup: true }));
});
button.disabled = false;
