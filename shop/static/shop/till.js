// The till's few behaviours on top of plain pages (everything works without them, by typing):
// the camera scanner of the payment code, the sound and vibration of an answer, print and share
// of a receipt, the installed till's service worker. Loaded from our origin only
// (Content-Security-Policy), with jsQR beside it for browsers without BarcodeDetector.
"use strict";

(function () {
  function scanner() {
    const button = document.getElementById("scan");
    const field = document.getElementById("id_code");
    if (!button || !field || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return;
    }
    const box = document.getElementById("scanner");
    const video = document.getElementById("scanner-video");
    const status = document.getElementById("scanner-status");
    const label = button.textContent;
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const detector = "BarcodeDetector" in window ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
    let stream = null;

    function stop() {
      if (stream) stream.getTracks().forEach((track) => track.stop());
      stream = null;
      box.hidden = true;
      button.textContent = label;
    }

    async function read() {
      if (!stream) return;
      if (video.readyState >= 2 && video.videoWidth) {
        let text = null;
        if (detector) {
          const codes = await detector.detect(video).catch(() => []);
          text = codes.length ? codes[0].rawValue : null;
        } else if (window.jsQR) {
          canvas.width = video.videoWidth;
          canvas.height = video.videoHeight;
          context.drawImage(video, 0, 0);
          const image = context.getImageData(0, 0, canvas.width, canvas.height);
          const code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
          text = code ? code.data : null;
        }
        const digits = text ? text.replace(/\D/g, "") : "";
        if (digits.length === 10) {
          field.value = digits;
          stop();
          status.textContent = button.dataset.read;
          box.hidden = false;
          video.hidden = true;
          if (navigator.vibrate) navigator.vibrate(80);
          const amount = document.getElementById("id_amount");
          (amount && !amount.value ? amount : document.querySelector("#pay-form button[type=submit]")).focus();
          return;
        }
      }
      requestAnimationFrame(read);
    }

    button.hidden = false;
    button.addEventListener("click", async () => {
      if (stream) return stop();
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      } catch (error) {
        box.hidden = false;
        video.hidden = true;
        status.textContent = button.dataset.noCamera;
        field.focus();
        return;
      }
      video.hidden = false;
      box.hidden = false;
      video.srcObject = stream;
      await video.play().catch(() => {});
      status.textContent = button.dataset.reading;
      button.textContent = button.dataset.stop;
      requestAnimationFrame(read);
    });
  }

  // An answer is felt and heard as well as read: the till may be on the counter.
  function answer() {
    const outcome = document.body.dataset.outcome;
    if (!outcome) return;
    const approved = outcome === "approved";
    const partial = outcome === "partially_approved";
    if (navigator.vibrate) navigator.vibrate(approved ? 200 : partial ? [150, 100, 150] : [400, 100, 400]);
    try {
      const audio = new (window.AudioContext || window.webkitAudioContext)();
      const tone = (frequency, start, length) => {
        const oscillator = audio.createOscillator();
        const gain = audio.createGain();
        oscillator.frequency.value = frequency;
        gain.gain.value = 0.2;
        oscillator.connect(gain).connect(audio.destination);
        oscillator.start(audio.currentTime + start);
        oscillator.stop(audio.currentTime + start + length);
      };
      if (approved) { tone(880, 0, 0.15); tone(1320, 0.18, 0.2); }
      else if (partial) { tone(880, 0, 0.15); tone(660, 0.18, 0.25); }
      else { tone(330, 0, 0.35); tone(220, 0.4, 0.45); }
    } catch (error) {
      // No sound on this device: the words and the colour remain.
    }
  }

  function receipt() {
    const print = document.getElementById("print");
    if (print) print.addEventListener("click", () => window.print());
    const share = document.getElementById("share");
    const text = document.getElementById("receipt");
    if (share && text && navigator.share) {
      share.hidden = false;
      share.addEventListener("click", () => {
        navigator.share({ title: share.dataset.title, text: text.innerText }).catch(() => {});
      });
    }
  }

  // Installed, the till starts without a network and says plainly that a payment needs one
  // (the worker keeps the till's files, never its pages).
  function install() {
    const root = document.documentElement;
    if (!("serviceWorker" in navigator) || !root.dataset.serviceWorker) return;
    navigator.serviceWorker.register(root.dataset.serviceWorker, { scope: root.dataset.scope }).catch(() => {
      // Not installable here (a private window, an old browser): the till works all the same.
    });
  }

  scanner();
  answer();
  receipt();
  install();
})();
