declare module 'async-exit-hook' {
  const exitHook: ((hook: () => void) => void) & { unhookEvent(event: string): void };
  export default exitHook;
}
