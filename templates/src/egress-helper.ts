import * as sdk from '@livekit/egress-sdk';

type Helper = typeof sdk.default;

// @livekit/egress-sdk is CommonJS with `exports.default`. Vite's interop hands a default import the
// whole `exports` object (so `EgressHelper.getLiveKitURL` is undefined at run time), while TypeScript
// types it as the helper; take the helper from whichever level it landed on.
const exported = sdk.default as Helper | { default: Helper };
export const EgressHelper: Helper = 'getLiveKitURL' in exported ? exported : exported.default;
