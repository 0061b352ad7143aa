import { LabIcon } from '@jupyterlab/ui-components';

// jp-icon3 lets the theme recolour the duck; the eye is a hole (evenodd) so it
// shows the background in light and dark themes alike.
const duckSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path fill-rule="evenodd" d="M9.5 2.5a4.5 4.5 0 1 0 0 9 4.5 4.5 0 1 0 0-9zm1.3 2.4a1.1 1.1 0 1 1 0 2.2 1.1 1.1 0 1 1 0-2.2z"/>
    <path d="M13.6 5.9l5.4 1.1c.7.2.7 1.1 0 1.3l-5.2 1.5z"/>
    <path d="M2 12.6c.2-.9 1.1-1.3 1.9-.9 1.5.8 3.3 1.2 5.4 1.2 2.4 0 4.4-.7 6-2.1.8-.7 2.1-.5 2.6.5.6 1.1.9 2.3.9 3.6 0 3.9-3.6 6.6-8.2 6.6C5.5 21.5 2.4 19 2 15.4z"/>
  </g>
</svg>`;

export const duckIcon = new LabIcon({
  name: 'rubberduck-jupyter:duck',
  svgstr: duckSvg
});
