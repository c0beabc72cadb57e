/** Relay→client frames, serialized once. `raw` is an event's stored JSON, spliced in without re-encoding. */
export const eventFrame = (subId: string, raw: string) => `["EVENT",${JSON.stringify(subId)},${raw}]`;
export const okFrame = (id: string, ok: boolean, message: string) => JSON.stringify(['OK', id, ok, message]);
export const eoseFrame = (subId: string) => JSON.stringify(['EOSE', subId]);
export const closedFrame = (subId: string, message: string) => JSON.stringify(['CLOSED', subId, message]);
export const noticeFrame = (message: string) => JSON.stringify(['NOTICE', message]);
