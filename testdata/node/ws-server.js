#!/usr/bin/env node
// A WebSocket server built on the npm `ws` package: a third-party implementation that wsload's
// tests and benchmarks run against, so our client is never only checked against our own server.
//
// Usage:
//   node ws-server.js --mode echo [--port 0] [--deflate]
//   node ws-server.js --mode broadcast
//   node ws-server.js --mode close-after --after-ms 500
//   node ws-server.js --mode invalid-frame
//   node ws-server.js --mode stall --every-ms 1000 --for-ms 200
//   node ws-server.js --mode hello
//
// It listens on 127.0.0.1 only and prints exactly one line, `listening <port>`, on stdout once it
// accepts connections (with --port 0 the kernel picks the port). It exits on SIGTERM or SIGINT,
// and, with --exit-with-stdin, when its stdin reaches end of file: a test harness passes a pipe
// there so the server dies with the harness even when the harness is killed without cleanup.
//
// Modes:
//   echo           echo every message back with the same opcode (text or binary).
//   broadcast      send every message to every connected client, the sender included.
//   close-after    echo, but end each connection abruptly (ws.terminate(): TCP close with no
//                  close frame) --after-ms N milliseconds after it opened.
//   invalid-frame  the reply to a connection's first message is a frame with the reserved
//                  opcode 0x3 (bytes 0x83 0x00), written straight to the socket; the message
//                  itself is not echoed.
//   stall          echo, but replies are held during the last --for-ms F milliseconds of every
//                  --every-ms E millisecond window (windows start when the server starts), then
//                  flushed in arrival order when the window ends.
//   hello          send the text "hello from node" as soon as a connection opens, then echo.
//
// perMessageDeflate is off unless --deflate is given. Nothing is logged per message: the echo
// mode is a benchmark target, and console output would cost more than the echo itself.
'use strict';

let WebSocketServer;
try {
  ({ WebSocketServer } = require('ws'));
} catch (err) {
  process.stderr.write(
    "ws-server: cannot load the npm package 'ws' (" + err.message + ');\n' +
    'run ./scripts/test.sh, it installs Node\'s ws (npm ci in testdata/node)\n');
  process.exit(3);
}

const MODES = ['echo', 'broadcast', 'close-after', 'invalid-frame', 'stall', 'hello'];

function usage(msg) {
  process.stderr.write('ws-server: ' + msg + '\n' +
    'usage: node ws-server.js --mode ' + MODES.join('|') + ' [--port N] [--deflate]\n' +
    '       [--after-ms N] [--every-ms E --for-ms F] [--exit-with-stdin]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { mode: '', port: 0, deflate: false, exitWithStdin: false, afterMs: -1, everyMs: -1, forMs: -1 };
  const intArg = (name, i) => {
    const v = argv[i + 1];
    if (v === undefined || !/^\d+$/.test(v)) usage(name + ' needs a non-negative integer, got ' + JSON.stringify(v));
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--mode':
        opts.mode = argv[++i] || '';
        break;
      case '--port': opts.port = intArg(a, i++); break;
      case '--after-ms': opts.afterMs = intArg(a, i++); break;
      case '--every-ms': opts.everyMs = intArg(a, i++); break;
      case '--for-ms': opts.forMs = intArg(a, i++); break;
      case '--deflate': opts.deflate = true; break;
      case '--exit-with-stdin': opts.exitWithStdin = true; break;
      default: usage('unknown argument ' + JSON.stringify(a));
    }
  }
  if (!MODES.includes(opts.mode)) usage('--mode must be one of ' + MODES.join(', ') + ', got ' + JSON.stringify(opts.mode));
  if (opts.port > 65535) usage('--port must be at most 65535');
  if (opts.mode === 'close-after' && opts.afterMs < 0) usage('--mode close-after needs --after-ms N');
  if (opts.mode === 'stall') {
    if (opts.everyMs <= 0 || opts.forMs < 0) usage('--mode stall needs --every-ms E (> 0) and --for-ms F');
    if (opts.forMs >= opts.everyMs) usage('--for-ms must be less than --every-ms, or nothing is ever sent');
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// send keeps the opcode of the message it answers: ws hands us a Buffer plus isBinary.
function echo(ws, data, isBinary) {
  ws.send(data, { binary: isBinary });
}

// Every socket-level error (a client sending a bad frame, a reset) is the client's business:
// without a listener an 'error' event would throw and take the whole server down.
function ignoreErrors(ws) {
  ws.on('error', () => {});
}

const handlers = {
  echo(ws) {
    ws.on('message', (data, isBinary) => echo(ws, data, isBinary));
  },

  broadcast(ws, wss) {
    ws.on('message', (data, isBinary) => {
      for (const client of wss.clients) {
        if (client.readyState === client.OPEN) client.send(data, { binary: isBinary });
      }
    });
  },

  'close-after'(ws) {
    const timer = setTimeout(() => ws.terminate(), opts.afterMs);
    ws.on('close', () => clearTimeout(timer));
    ws.on('message', (data, isBinary) => echo(ws, data, isBinary));
  },

  'invalid-frame'(ws) {
    ws.once('message', () => {
      // FIN + reserved opcode 0x3, zero length: every conforming client must fail the connection.
      ws._socket.write(Buffer.from([0x83, 0x00]));
    });
  },

  stall(ws) {
    ws.on('message', (data, isBinary) => stall.reply(ws, data, isBinary));
  },

  hello(ws) {
    ws.send('hello from node');
    ws.on('message', (data, isBinary) => echo(ws, data, isBinary));
  },
};

// stall holds replies during the last forMs of every everyMs window. One queue for the whole
// server keeps arrival order within each connection; a single timer flushes it when the stalled
// part of the window ends.
const stall = {
  start: Date.now(),
  queue: [],
  timer: null,

  // stalledUntil returns the time the current stall ends, or 0 when replies may flow now.
  stalledUntil(now) {
    const phase = (now - this.start) % opts.everyMs;
    if (phase < opts.everyMs - opts.forMs) return 0;
    return now - phase + opts.everyMs;
  },

  reply(ws, data, isBinary) {
    const now = Date.now();
    const until = this.stalledUntil(now);
    // A non-empty queue means a flush is due: queue behind it so replies never overtake.
    if (until === 0 && this.queue.length === 0) {
      echo(ws, data, isBinary);
      return;
    }
    this.queue.push([ws, data, isBinary]);
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), Math.max(until - now, 0));
    }
  },

  flush() {
    this.timer = null;
    const q = this.queue;
    this.queue = [];
    for (const [ws, data, isBinary] of q) {
      if (ws.readyState === ws.OPEN) echo(ws, data, isBinary);
    }
  },
};

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: opts.port,
  perMessageDeflate: opts.deflate,
  // Node's default accept backlog (511) drops SYNs during a fast ramp; the kernel caps this at
  // net.core.somaxconn.
  backlog: 65535,
  // Only broadcast needs the set of clients; tracking costs a Set insert and delete per connection.
  clientTracking: opts.mode === 'broadcast',
});

const onConnection = handlers[opts.mode];
wss.on('connection', (ws) => {
  ignoreErrors(ws);
  onConnection(ws, wss);
});

wss.on('listening', () => {
  process.stdout.write('listening ' + wss.address().port + '\n');
});

wss.on('error', (err) => {
  process.stderr.write('ws-server: ' + err.message + '\n');
  process.exit(1);
});

function shutdown() {
  // Exit at once: open connections are closed by the kernel, which is what a killed server does.
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

if (opts.exitWithStdin) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
