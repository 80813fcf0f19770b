// The API key lives in sessionStorage: it is kept for this browser tab's session only, and goes
// with every request (HTTP header and WebSocket connection params).
const STORAGE_KEY = 'audience-sync-console:api-key';

export const readApiKey = (): string | null => sessionStorage.getItem(STORAGE_KEY);
export const saveApiKey = (key: string): void => sessionStorage.setItem(STORAGE_KEY, key);
export const forgetApiKey = (): void => sessionStorage.removeItem(STORAGE_KEY);
