// Server-sent events over fetch: EventSource cannot send the token as a header, and the token must not go in a URL
// (URLs end up in logs and history). Parses the text/event-stream format and reconnects after the server's retry.
export function openStream(url, token, { onEvent, onState }) {
  let stopped = false;
  let retryMs = 2000;
  let controller = null;

  async function once() {
    controller = new AbortController();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: controller.signal, cache: 'no-store' });
    if (res.status === 401) {
      onState('unauthorized');
      stopped = true;
      return;
    }
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    onState('open');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
          else if (line.startsWith('retry: ')) retryMs = Number(line.slice(7)) || retryMs;
        }
        if (data.length) onEvent(event, JSON.parse(data.join('\n')));
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch {
        // Network error or console restarting: say so and try again.
      }
      if (stopped) break;
      onState('closed');
      await new Promise((r) => setTimeout(r, retryMs));
    }
  })();

  return () => {
    stopped = true;
    controller?.abort();
  };
}
