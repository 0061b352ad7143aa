import './base.css';
import './context.css';
import './cellreview.css';
