// Turns "[name p.N]" (and "[deck.pptx slide N]", "[book.xlsx sheet N]") in the answers into
// links that open the page. The answers keep plain citations (so the copy button copies clean
// text); the browser wraps them, and a click sends "turn|citation|nonce" to the hidden
// #cite-target box, whose change opens the page. The chat's messages are labelled for screen
// readers with their Markdown source: its escapes (ui.markdown) are taken out of the labels.
(() => {
  // CITATION_PATTERN: rag.citations.PATTERN, put in by ui/chat.py as the page is served
  const CITATION = new RegExp(CITATION_PATTERN, 'g');
  const WHOLE = new RegExp(`^${CITATION_PATTERN}$`);
  const SPLIT = new RegExp(`(${CITATION_PATTERN})`);
  function turnOf(message) {
    const rows = [...document.querySelectorAll('#chat .message-row')];
    const at = rows.indexOf(message.closest('.message-row'));
    return rows.slice(0, at + 1).filter(r => r.classList.contains('user-row')).length - 1;
  }
  function linkify(root) {
    for (const message of root.querySelectorAll('#chat .bot-row [data-testid=bot]')) {
      const walker = document.createTreeWalker(message, NodeFilter.SHOW_TEXT);
      const found = [];
      while (walker.nextNode()) {
        const node = walker.currentNode;
        if (!node.parentElement.closest('a') && CITATION.test(node.nodeValue)) found.push(node);
        CITATION.lastIndex = 0;
      }
      for (const node of found) {
        const parts = node.nodeValue.split(SPLIT);
        const fragment = document.createDocumentFragment();
        for (const part of parts) {
          if (WHOLE.test(part)) {
            const link = document.createElement('a');
            link.href = '#';
            link.className = 'cite';
            link.textContent = part;
            fragment.appendChild(link);
          } else if (part) {
            fragment.appendChild(document.createTextNode(part));
          }
        }
        node.replaceWith(fragment);
      }
    }
  }
  const ESCAPED = /\\([\\`*_\[\]<>&~|])/g;  // ui.markdown's escapes
  function unescapeLabels(root) {
    for (const message of root.querySelectorAll('#chat [data-testid=bot], #chat [data-testid=user]')) {
      const label = message.getAttribute('aria-label') || '';
      const plain = label.replace(ESCAPED, '$1');
      if (plain !== label) message.setAttribute('aria-label', plain);  // (no loop: unchanged)
    }
  }
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('#chat a.cite');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const box = document.querySelector('#cite-target textarea, #cite-target input');
    if (!box) return;
    box.value = `${turnOf(link)}|${link.textContent}|${Date.now()}`;
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }, true);
  new MutationObserver(() => { linkify(document); unescapeLabels(document); }).observe(document, {
    childList: true, subtree: true, characterData: true,
    attributes: true, attributeFilter: ['aria-label'],
  });
})();
