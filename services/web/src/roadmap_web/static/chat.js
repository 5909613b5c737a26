// The mentor's answer, token by token: follows /roadmaps/{id}/chat/events (the API's chat
// stream, relayed) from the position the question was asked at, appends each `delta` of
// this answer and ends on its `message` event. The region is aria-busy while it streams, so
// a screen reader reads the answer once, when it is complete.
(function () {
  "use strict";
  var box = document.getElementById("answer");
  if (!box || !box.dataset.chatEvents) return;
  var text = box.querySelector("[data-chat-text]");
  var state = box.querySelector("[data-chat-state]");
  var answer = box.dataset.answer;
  var seen = {};
  var source = new EventSource(box.dataset.chatEvents);
  source.addEventListener("delta", function (e) {
    var data = JSON.parse(e.data);
    if (data.message_id !== answer || seen[data.index]) return;
    seen[data.index] = true;  // a resumed stream may repeat a piece
    text.textContent += data.text;
  });
  source.addEventListener("message", function (e) {
    var message = JSON.parse(e.data).message;
    if (!message || message.id !== answer) return;
    source.close();
    text.textContent = message.content;
    text.classList.remove("streaming");
    state.textContent = message.status === "failed" ? "failed: " + (message.error || "") : "done";
    box.setAttribute("aria-busy", "false");
  });
})();
