// One HTTP server: WebSocket upgrades on /ws/chat speak WhatsApp Web; everything else is the
// control API.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { makeControlApi } from './control-api.js'

export const WS_PATH = '/ws/chat'

export const startServer = ({ emu, host, port }) => new Promise((resolve, reject) => {
  const api = makeControlApi(emu)
  const server = http.createServer((req, res) => { api(req, res) })
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 })
  server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url, 'http://emulator').pathname
    if (path !== WS_PATH) {
      socket.write('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      socket.destroy()
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => emu.accept(ws, req))
  })
  server.on('error', reject)
  server.listen(port, host, async () => {
    server.off('error', reject)
    try {
      await emu.mediaServer.start(emu.settings.mediaPort ?? 0) // the HTTPS media host (media-server.js)
    } catch (err) {
      server.close()
      return reject(err)
    }
    const stop = () => new Promise((resolve) => {
      emu.shutdown()
      emu.mediaServer.stop()
      for (const ws of wss.clients) { try { ws.terminate() } catch { /* already gone */ } }
      wss.close()
      server.close(() => resolve())
      server.closeAllConnections?.()
    })
    resolve({ server, wss, port: server.address().port, stop })
  })
})
