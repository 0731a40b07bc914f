// Helpers of the auth_* scenarios: login attempts and a probe of what one connection may do.
import { connectTo, describeError } from "../../js/lib.mjs";

/** Connect with `opts`; the error class and message a refused login gives, or "connected". */
export async function attempt(opts) {
  try {
    const nc = await connectTo(opts);
    await nc.flush();
    await nc.close();
    return "connected";
  } catch (err) {
    return describeError(err);
  }
}

/** The asynchronous server errors (permission violations) a connection reports. */
export function watchErrors(nc) {
  const errs = [];
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error") errs.push(describeError(s.error));
    }
  })();
  return errs;
}

/**
 * Whether `nc` may subscribe to `subject`: a refused subscription ends its iterator with a
 * PermissionViolationError. A flush round trip comes back after the server's -ERR.
 */
export async function trySubscribe(nc, subject) {
  const sub = nc.subscribe(subject);
  let err = null;
  const done = (async () => {
    try {
      for await (const _ of sub) {
        /* messages are not the point here */
      }
    } catch (e) {
      err = describeError(e);
    }
  })();
  await nc.flush();
  await nc.flush();
  if (err === null) {
    sub.unsubscribe();
    await done;
    return "allowed";
  }
  return err;
}
